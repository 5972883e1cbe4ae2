"""Test kit: a shell command in a mount namespace of its own (`unshare --mount`, as root), where
a test makes a real full disk (a small tmpfs) or a real read-only folder (a bind mount) that no
one else sees."""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest

CAN_UNSHARE = shutil.which("unshare") is not None and subprocess.run(
    ["unshare", "--mount", "true"], capture_output=True).returncode == 0
needs_unshare = pytest.mark.skipif(not CAN_UNSHARE, reason="needs `unshare --mount` (root, util-linux)")


def in_own_mounts(shell: str, timeout: float = 60, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(["unshare", "--mount", "--propagation", "private", "sh", "-c", shell],
                          capture_output=True, text=True, timeout=timeout, env={**os.environ, **env})
