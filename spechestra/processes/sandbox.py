"""Generated code runs contained: LLM output is untrusted input.

Every run of code an LLM wrote (a spec's tests, each fix attempt's tests, a perform step, the
arrangement's setup commands) goes through here. On Linux with bubblewrap (`bwrap`) it gets:

- the file system read-only, except the folders the run owns (a spec's staging folder, a private
  temp dir); the home folder, `PREFECT_HOME` and the checkout's `.env` files hidden;
- no network (a new network namespace: only its own loopback, so not the Prefect API, a database
  or an LLM server on 127.0.0.1) unless the spec asks for it (`network: true` in its front matter);
- a new PID namespace, so nothing it starts outlives it;
- resource limits (CPU time, memory, processes, output size), set by `reaper.py` on the command.

With or without the sandbox, the environment is an allow-list (`child_env`): never a provider
key, never a Prefect setting. `SPECHESTRA_SANDBOX` says what happens where bubblewrap cannot run:
`auto` runs uncontained and says so once, loudly; `required` refuses; `off` never sandboxes.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Mapping, Optional

from ..errors import SandboxUnavailable
from ..settings import environment, prefect_home, secret_values, settings

#: Variables generated code may see, when set: what a program needs to run, nothing that grants access.
ALLOWED_ENV = ("PATH", "LANG", "LANGUAGE", "LC_ALL", "LC_CTYPE", "LC_MESSAGES", "TZ", "TERM", "NO_COLOR")
#: Added only when the network is allowed: what an HTTP client needs to reach it.
NETWORK_ENV = ("HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "http_proxy", "https_proxy", "no_proxy",
               "SSL_CERT_FILE", "SSL_CERT_DIR", "REQUESTS_CA_BUNDLE")
#: Never passed, even when an arrangement declares them.
NEVER_PREFIXES = ("PREFECT_", "SPECHESTRA_", "SPECSOLOIST_", "AWS_", "GOOGLE_", "AZURE_")
PACKAGE = Path(__file__).resolve().parent.parent

_log = logging.getLogger("spechestra.sandbox")


@dataclass(frozen=True)
class Containment:
    """How one run of generated code is contained: what the build summary and run history say."""

    sandboxed: bool
    network: bool
    why_not: str = ""
    landlocked: bool = False  # no bubblewrap, but writes limited to the run's own folders (Landlock)

    def describe(self) -> str:
        if self.sandboxed:
            return "bubblewrap, " + ("network allowed (the spec asks for it)" if self.network else "no network")
        if self.landlocked:
            return f"NOT sandboxed ({self.why_not}); only writes are limited (Landlock) to the run's own folders"
        return f"NOT sandboxed ({self.why_not})"


@functools.lru_cache(maxsize=1)
def unavailable() -> Optional[str]:
    """Why bubblewrap cannot contain code on this machine (None: it can). Tried once per process,
    with the same namespaces a real run uses."""
    if not sys.platform.startswith("linux"):
        return f"bubblewrap is Linux-only (this is {sys.platform})"
    exe = shutil.which("bwrap")
    if exe is None:
        return "bubblewrap is not installed (apt install bubblewrap)"
    try:
        probe = subprocess.run([exe, "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc", "--unshare-net",
                                "--unshare-pid", "--die-with-parent", "true"], capture_output=True, text=True,
                               timeout=30)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"bwrap did not run: {exc}"
    if probe.returncode != 0:
        said = (probe.stderr.strip().splitlines() or ["no message"])[-1]
        return f"bwrap cannot create namespaces here ({said}): user namespaces are off in this container or kernel"
    return None


def containment(network: bool = False) -> Containment:
    """What the next run gets under the `sandbox` setting; `SandboxUnavailable` when required."""
    mode = settings.sandbox
    if mode == "off":
        return Containment(False, True, "SPECHESTRA_SANDBOX=off")
    why = unavailable()
    if why is None:
        return Containment(True, network)
    if mode == "required":
        raise SandboxUnavailable(f"SPECHESTRA_SANDBOX=required, but {why}; install bubblewrap where user "
                                 "namespaces work, or set SPECHESTRA_SANDBOX=auto to run generated code uncontained")
    _warn_once(why)
    return Containment(False, True, why, landlocked=landlock_abi() >= 1)


@functools.lru_cache(maxsize=1)
def landlock_abi() -> int:
    """The kernel's Landlock ABI (0: none), asked once per process."""
    from . import landlock
    return landlock.abi()


def landlock_args(box: Containment, writable: Iterable[str]) -> list[str]:
    """The reaper's `--writable` where bubblewrap is missing but Landlock works (mode `auto`):
    the run still writes only its own folders, as it would in the sandbox."""
    if not box.landlocked:
        return []
    return ["--writable=" + json.dumps([os.path.realpath(p) for p in writable if os.path.exists(p)])]


def summary(box: Containment, networked: Iterable[str] = ()) -> str:
    """One build's containment in words, naming the specs that asked for the network."""
    names = sorted(networked)
    if box.sandboxed and names:
        return f"{box.describe()}; network allowed for {', '.join(names)} (asked for)"
    return box.describe()


@functools.lru_cache(maxsize=None)
def _warn_once(why: str) -> None:
    _log.warning("GENERATED CODE RUNS UNCONTAINED: %s. It runs as you, with your files and network "
                 "(set SPECHESTRA_SANDBOX=required to refuse instead)", why)


def child_env(import_paths: Iterable[str], home: str, network: bool, declared: Iterable[str] = ()) -> dict[str, str]:
    """The environment generated code gets: the allow-list, the variables the arrangement declares
    (`env_vars`: names only), a private HOME and TMPDIR, and PYTHONPATH. A declared variable that
    holds a provider key or a Prefect setting is left out whatever its name."""
    source: Mapping[str, str] = environment()
    secrets = set(secret_values())
    names = list(ALLOWED_ENV) + (list(NETWORK_ENV) if network else [])
    names += [n for n in declared if not n.startswith(NEVER_PREFIXES)]
    env = {n: source[n] for n in names if source.get(n) and source[n].strip() not in secrets}
    env.update(HOME=home, TMPDIR=home, PYTHONDONTWRITEBYTECODE="1", PYTHONNOUSERSITE="1",
               PYTHONPATH=os.pathsep.join(p for p in import_paths if p))
    env.setdefault("PATH", os.defpath)
    return env


#: What the run gets new: a /dev of its own and these folders empty. Whatever it needs below any of
#: them is bound back in (the one list for both, so none is left out: a project in /dev/shm vanished).
_EMPTY_FOLDERS = ("/tmp", "/run", "/var/tmp")
_FRESH = ("/dev", *_EMPTY_FOLDERS)


def wrap(cmd: list[str], box: Containment, cwd: str, writable: Iterable[str], readable: Iterable[str] = (),
         die_with_parent: bool = True) -> list[str]:
    """`cmd` as run inside the sandbox (unchanged when `box` is not sandboxed)."""
    if not box.sandboxed:
        return cmd
    exe = shutil.which("bwrap") or "bwrap"
    writable = [os.path.realpath(p) for p in writable]
    needed = [os.path.realpath(p) for p in [cwd, *readable, *_interpreter_paths()] if p]
    args = [exe, "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc"]
    for folder in _EMPTY_FOLDERS:
        args += ["--tmpfs", folder]
    hidden = _hidden_dirs()
    covered = hidden + list(_FRESH)
    for folder in hidden:
        args += ["--tmpfs", folder]
    bound = list(writable)
    for path in needed:  # everything else is visible already, read-only, through "/"
        if any(_inside(path, c) for c in covered) and os.path.exists(path):
            args += ["--ro-bind", path, path]
            bound.append(path)
    for path in writable:
        args += ["--bind", path, path]
    for folder in hidden:
        if any(_inside(folder, b) and folder != b for b in bound):
            args += ["--tmpfs", folder]  # a parent bound above (a script's folder in /tmp, say) showed it again
    for secret in _secret_files(needed + writable):
        args += ["--ro-bind", "/dev/null", secret]
    for folder in hidden:
        args += ["--remount-ro", folder]
    args += ["--unshare-pid", "--unshare-ipc", "--unshare-uts", "--unshare-cgroup-try", "--chdir", os.path.realpath(cwd)]
    if die_with_parent:
        args.append("--die-with-parent")
    if not box.network:
        args.append("--unshare-net")
    return args + ["--", *cmd]


#: What refused attempts look like in a contained run's output (errno texts, Python's and libc's).
_REFUSED = (
    (re.compile(r"Read-only file system: '([^']+)'"), "the sandbox refused a write outside the build: {}"),
    (re.compile(r"Read-only file system"), "the sandbox refused a write outside the build"),
    (re.compile(r"Network is unreachable|Temporary failure in name resolution|Name or service not known|"
                r"No address associated with hostname"), "the sandbox refused a network connection (no network)"),
    (re.compile(r"Connection refused"), "a connection was refused (in the sandbox nothing listens on 127.0.0.1)"),
)


def refusals(output: str) -> list[str]:
    """What the sandbox refused, from a failed run's output: shown in the spec's notes, so a test
    that failed because its code tried to leave says so instead of looking like a bug."""
    found: list[str] = []
    for pattern, words in _REFUSED:
        for match in pattern.finditer(output):
            line = words.format(*match.groups())
            if line not in found and not (not match.groups() and any(f.startswith(line) for f in found)):
                found.append(line)
    return found[:5]


def _interpreter_paths() -> list[str]:
    """What the child interpreter needs to read: Python itself, its packages, Spechestra's helpers."""
    paths = {sys.prefix, sys.base_prefix, sys.exec_prefix, os.path.dirname(os.path.realpath(sys.executable)),
             str(PACKAGE)}
    paths.update(p for p in sys.path if p and os.path.isdir(p))
    return sorted(paths)


def _hidden_dirs() -> list[str]:
    """Folders generated code never reads: the user's home (keys, ssh, cloud credentials) and
    Prefect's home (profiles with API keys, a local server's database with Secret blocks)."""
    found = []
    for folder in (os.path.expanduser("~"), str(prefect_home())):
        real = os.path.realpath(folder)
        if os.path.isdir(real) and real != "/" and real not in found:
            found.append(real)
    return found


def _secret_files(needed: list[str]) -> list[str]:
    """`.env` files (where Prefect and tools keep keys) in the folders the run can read."""
    found = set()
    for folder in needed:
        for candidate in (Path(folder) / ".env", Path(folder).parent / ".env"):
            if candidate.is_file():
                found.add(str(candidate))
    return sorted(found)


def _inside(path: str, folder: str) -> bool:
    return path == folder or path.startswith(folder.rstrip("/") + "/")
