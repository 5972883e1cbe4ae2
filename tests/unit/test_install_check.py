"""The specsoloist/spechestra name clash is detected and explained (real files, real RECORDs)."""

import base64
import hashlib
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from spechestra import install_check

OLD_INIT = '"""Spechestra - Orchestration layer (old copy)."""\nfrom .composer import SpecComposer\n'


def _hash(data: bytes) -> str:
    return "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()


def _site(tmp_path: Path) -> Path:
    """A site dir holding our real package files and a RECORD for them, plus specsoloist's RECORD."""
    site = tmp_path / "site"
    pkg = Path(install_check.__file__).parent
    shutil.copytree(pkg, site / "spechestra", ignore=shutil.ignore_patterns("__pycache__", "recordings"))
    rows = [f"spechestra/{p.relative_to(site / 'spechestra').as_posix()},{_hash(p.read_bytes())},{p.stat().st_size}"
            for p in sorted((site / "spechestra").rglob("*")) if p.is_file()]
    info = site / "spechestra-0.1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: spechestra\nVersion: 0.1.0\n")
    (info / "RECORD").write_text("\n".join(rows) + "\n")
    solo = site / "specsoloist-0.7.0.dist-info"
    solo.mkdir()
    (solo / "METADATA").write_text("Metadata-Version: 2.1\nName: specsoloist\nVersion: 0.7.0\n")
    (solo / "RECORD").write_text(f"spechestra/__init__.py,{_hash(OLD_INIT.encode())},{len(OLD_INIT)}\n")
    return site


def test_clean_install_is_ok(tmp_path):
    report = install_check.check([str(_site(tmp_path))])
    assert report.ok and report.ours, report.explain()


def test_specsoloist_reinstalled_over_ours_is_detected(tmp_path):
    site = _site(tmp_path)
    (site / "spechestra" / "__init__.py").write_text(OLD_INIT)
    report = install_check.check([str(site)])
    assert not report.ok and not report.ours
    text = report.explain()
    assert "old copy bundled with specsoloist 0.7.0" in text
    assert "spechestra/__init__.py was overwritten by specsoloist 0.7.0" in text
    assert "--force-reinstall" in text


def test_missing_file_is_detected(tmp_path):
    site = _site(tmp_path)
    (site / "spechestra" / "composer.py").unlink()
    report = install_check.check([str(site)])
    assert any("spechestra/composer.py is missing" in p for p in report.problems), (report.ours, report.problems)


def test_doctor_passes_on_this_install():
    exe = Path(sys.executable).parent / "spechestra"
    if not exe.exists():
        pytest.skip("spechestra console script not installed in this interpreter (run `make test`)")
    done = subprocess.run([str(exe), "doctor"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "spechestra OK" in done.stdout
