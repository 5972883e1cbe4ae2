"""Detect and explain the `spechestra` package-name clash with the specsoloist wheel.

The specsoloist wheel ships an old package also named `spechestra`. Installing one over the
other overwrites files in the same `site-packages/spechestra/` folder, and an editable install
of ours is shadowed by that folder. This module finds out which copy Python will import, and
whether the installed files are still the ones our distribution's RECORD lists.
Standard library only: it must work even when the rest of the package has been overwritten.
"""

from __future__ import annotations

import base64
import hashlib
import importlib.machinery
import importlib.metadata as metadata
import json
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

MARKER = "spechestra-on-prefect"  # appears in our __init__.py, never in specsoloist's copy


@dataclass
class InstallReport:
    package_dir: Optional[str]
    ours: bool
    problems: list[str] = field(default_factory=list)
    repair: str = ""

    @property
    def ok(self) -> bool:
        return not self.problems

    def explain(self) -> str:
        if self.ok:
            return f"spechestra OK: importing {self.package_dir}"
        return "\n".join(["spechestra install problem:"] + [f"  - {p}" for p in self.problems]
                         + ["Repair:", f"  {self.repair}"])


def _record_hashes(dist) -> dict[str, str]:
    """RECORD entries under spechestra/: relative path -> sha256 (urlsafe base64).

    Read from the RECORD text itself: `Distribution.files` was seen to leave out entries whose
    file is gone once other packages' metadata finders were loaded, hiding exactly the damage
    this check exists to report.
    """
    import csv
    hashes = {}
    for row in csv.reader((dist.read_text("RECORD") or "").splitlines()):
        if len(row) >= 2 and row[0].startswith("spechestra/") and row[1].startswith("sha256="):
            hashes[row[0]] = row[1][len("sha256="):]
    return hashes


def _sha256(path: Path) -> str:
    digest = hashlib.sha256(path.read_bytes()).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def _dist(name: str, path: Optional[list[str]]):
    if path is None:
        found = list(metadata.distributions(name=name))
        return found[0] if found else None
    # Some installed packages add metadata finders that ignore `path` and answer from sys.path;
    # keep only distributions that really live in the folders asked about.
    roots = [Path(p).resolve() for p in path]
    for dist in metadata.distributions(name=name, path=path):
        where = Path(str(dist.locate_file(""))).resolve()
        if any(where == root or root in where.parents for root in roots):
            return dist
    return None


def _project_source(dist) -> Optional[str]:
    """Where our distribution was installed from, if pip recorded a local directory."""
    raw = dist.read_text("direct_url.json") if dist else None
    if not raw:
        return None
    info = json.loads(raw)
    url = info.get("url", "")
    return url[len("file://"):] if url.startswith("file://") else None


def _editable(dist) -> bool:
    raw = dist.read_text("direct_url.json") if dist else None
    return bool(raw and json.loads(raw).get("dir_info", {}).get("editable"))


def check(path: Optional[list[str]] = None) -> InstallReport:
    """Inspect what `import spechestra` would load from `path` (default: sys.path)."""
    spec = importlib.machinery.PathFinder.find_spec("spechestra", path)
    ours_dist = _dist("spechestra", path)
    soloist = _dist("specsoloist", path)
    source = _project_source(ours_dist)
    pip = f"{sys.executable} -m pip install --no-deps --force-reinstall"  # this venv's, not a bare python
    repair = (f"{pip} {source}" if source
              else f"from your Spechestra checkout: make install   (or: {pip} .)")
    if spec is None or not spec.submodule_search_locations:
        return InstallReport(None, False, ["no importable 'spechestra' package was found"], repair)
    pkg_dir = Path(list(spec.submodule_search_locations)[0])
    init = pkg_dir / "__init__.py"
    ours = init.exists() and MARKER in init.read_text(encoding="utf-8", errors="replace")
    report = InstallReport(str(pkg_dir), ours, repair=repair)
    foreign_hashes = set(_record_hashes(soloist).values()) if soloist else set()
    soloist_name = f"specsoloist {soloist.version}" if soloist else "another package"

    if not ours:
        whose = f"the old copy bundled with {soloist_name}" if soloist else "not this project's package"
        report.problems.append(f"'import spechestra' loads {pkg_dir}, which is {whose}")
        if _editable(ours_dist):
            report.problems.append("your editable install of Spechestra is shadowed by that folder")
    if ours_dist is not None and not _editable(ours_dist):
        installed_dir = Path(ours_dist.locate_file("spechestra"))
        if installed_dir.resolve() == pkg_dir.resolve():
            for rel, expected in sorted(_record_hashes(ours_dist).items()):
                file = Path(ours_dist.locate_file(rel))
                if not file.exists():
                    report.problems.append(f"{rel} is missing (deleted by an uninstall or reinstall?)")
                    continue
                actual = _sha256(file)
                if actual != expected:
                    who = soloist_name if actual in foreign_hashes else "something else"
                    report.problems.append(f"{rel} was overwritten by {who}")
    return report


def guard_import() -> None:
    """Called from our __init__: refuse to run on a mix of our files and specsoloist's."""
    import sys
    if os.environ.get("SPECHESTRA_SKIP_INSTALL_CHECK") or sys.argv[1:2] == ["doctor"]:
        return  # `spechestra doctor` must run to explain the problem
    report = check()
    if report.ours and not report.ok:
        raise ImportError(report.explain())
