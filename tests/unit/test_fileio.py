"""Writes that fail say which file, why and what to do (issue 19: "[Errno 28] No space left on
device" named no path). A real full disk and a real read-only folder: a tmpfs of 64 KiB and a
read-only bind mount, in a mount namespace of the test's own (unshare, as root)."""

import sys

from kit.mounts import in_own_mounts, needs_unshare

pytestmark = needs_unshare

WRITE = ("import sys\nsys.path[:0] = {path!r}\nfrom spechestra.core.fileio import atomic_write\n"
         "from spechestra.errors import CannotWrite\n"
         "try:\n    atomic_write({target!r}, 'x' * 200_000)\nexcept CannotWrite as exc:\n"
         "    print('SAID', exc)\n    print('OSERROR', isinstance(exc, OSError))\n")


def test_a_full_disk_names_the_file_the_free_space_and_what_to_do(tmp_path):
    folder = tmp_path / "small"
    folder.mkdir()
    code = WRITE.format(path=sys.path, target=str(folder / "cache.json"))
    (tmp_path / "w.py").write_text(code)
    done = in_own_mounts(f"mount -t tmpfs -o size=64k tmpfs {folder} && {sys.executable} {tmp_path / 'w.py'}")
    said = [line for line in done.stdout.splitlines() if line.startswith("SAID ")]
    assert said, done.stdout + done.stderr
    assert f"cannot write {folder / 'cache.json'}: no space left on the device" in said[0]
    assert "MiB free in" in said[0] and "run the same command again" in said[0]
    assert "OSERROR True" in done.stdout  # callers that caught OSError still do
    assert not list(folder.iterdir()), "a half-written temp file was left behind"


def test_a_read_only_folder_says_so(tmp_path):
    folder = tmp_path / "ro"
    folder.mkdir()
    (tmp_path / "w.py").write_text(WRITE.format(path=sys.path, target=str(folder / "a.py")))
    done = in_own_mounts(f"mount --bind -o ro {folder} {folder} && {sys.executable} {tmp_path / 'w.py'}")
    assert f"SAID cannot write {folder / 'a.py'}: {folder} is on a read-only file system" in done.stdout, \
        done.stdout + done.stderr
