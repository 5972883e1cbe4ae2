"""Landlock: a process gives up the right to write anywhere but a few folders, for good.

Why: the warm test runner (`warm_server.py`) runs many specs' tests inside one bubblewrap
sandbox, which can only make a folder writable for all of them at once. Each run restricts
itself after the fork, so one spec's tests can still write only that spec's own staging folder
and temp dir, as under a sandbox of its own, and cannot signal or trace processes outside its
own run (the server, other specs' runs).

Standard library only (ctypes) and free of package imports: the warm server imports it as a
sibling module. Linux 5.13+; `abi()` is 0 where the kernel has no Landlock, and callers then
keep to the per-run sandbox.
"""

from __future__ import annotations

import ctypes
import os
import platform

_SYSCALLS = {"x86_64": (444, 445, 446), "aarch64": (444, 445, 446)}  # create_ruleset, add_rule, restrict_self
_CREATE_RULESET_VERSION = 1
_RULE_PATH_BENEATH = 1
_PR_SET_NO_NEW_PRIVS = 38

#: Write-type rights by the ABI version that introduced them (reads and execution stay allowed).
_WRITE_RIGHTS = ((1, (1 << 1) | (1 << 4) | (1 << 5) | (1 << 6) | (1 << 7) | (1 << 8) | (1 << 9) | (1 << 10)
                  | (1 << 11) | (1 << 12)),   # write, remove dir/file, make char/dir/reg/sock/fifo/block/sym
                 (2, 1 << 13),                # refer (link or rename across folders)
                 (3, 1 << 14))                # truncate
_DIR_ONLY = (1 << 4) | (1 << 5) | (1 << 6) | (1 << 7) | (1 << 8) | (1 << 9) | (1 << 10) | (1 << 11) | (1 << 12) | (1 << 13)
_SCOPE_SIGNAL, _SCOPE_ABSTRACT_UNIX = 1 << 1, 1 << 0  # ABI 6


class _RulesetAttr(ctypes.Structure):
    _fields_ = [("handled_access_fs", ctypes.c_uint64), ("handled_access_net", ctypes.c_uint64),
                ("scoped", ctypes.c_uint64)]


class _PathBeneath(ctypes.Structure):
    _pack_ = 1
    _fields_ = [("allowed_access", ctypes.c_uint64), ("parent_fd", ctypes.c_int32)]


def _libc():
    return ctypes.CDLL(None, use_errno=True)


def abi() -> int:
    """The kernel's Landlock ABI version, 0 when there is none (or on another OS or machine)."""
    numbers = _SYSCALLS.get(platform.machine())
    if numbers is None or not platform.system() == "Linux":
        return 0
    version = _libc().syscall(numbers[0], None, ctypes.c_size_t(0), ctypes.c_uint32(_CREATE_RULESET_VERSION))
    return max(0, int(version))


def restrict_writes(writable: list[str]) -> None:
    """From now on this process and all it starts may write only below `writable` (files or
    folders), and (ABI 6+) signal only processes of its own. Raises OSError when it cannot."""
    version = abi()
    if version < 1:
        raise OSError("Landlock is not available in this kernel")
    create, add_rule, restrict = _SYSCALLS[platform.machine()]
    libc = _libc()
    handled = 0
    for since, rights in _WRITE_RIGHTS:
        if version >= since:
            handled |= rights
    attr = _RulesetAttr(handled, 0, (_SCOPE_SIGNAL | _SCOPE_ABSTRACT_UNIX) if version >= 6 else 0)
    size = ctypes.sizeof(attr) if version >= 6 else 16  # older kernels refuse the `scoped` field
    ruleset = libc.syscall(create, ctypes.byref(attr), ctypes.c_size_t(size), ctypes.c_uint32(0))
    if ruleset < 0:
        raise OSError(ctypes.get_errno(), "landlock_create_ruleset failed")
    try:
        for path in writable:
            fd = os.open(path, os.O_PATH | os.O_CLOEXEC)
            try:
                allowed = handled if os.path.isdir(path) else handled & ~_DIR_ONLY
                rule = _PathBeneath(allowed, fd)
                if libc.syscall(add_rule, ctypes.c_int(ruleset), ctypes.c_int(_RULE_PATH_BENEATH),
                                ctypes.byref(rule), ctypes.c_uint32(0)) != 0:
                    raise OSError(ctypes.get_errno(), f"landlock_add_rule failed for {path}")
            finally:
                os.close(fd)
        if libc.prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_SET_NO_NEW_PRIVS) failed")
        if libc.syscall(restrict, ctypes.c_int(ruleset), ctypes.c_uint32(0)) != 0:
            raise OSError(ctypes.get_errno(), "landlock_restrict_self failed")
    finally:
        os.close(ruleset)
