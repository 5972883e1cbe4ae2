"""Every setting Spechestra reads, in one object: its variable, type, default and description.

Settings are read when used, never snapshotted at import: a test, a worker or a long-lived
process that changes its environment gets the new value at the next read. One parser turns
the text into the setting's type and, when it cannot, raises a `ConfigurationError` that names
the variable, what it holds and the form expected. Nothing else in the package reads
`os.environ`, except the install check (`install_check`), which must work when this very file
has been overwritten by another package, and the standalone helper scripts that run in child
processes (`processes/reaper.py`, `processes/step_child.py`) which read nothing.

Prefect's own settings (`PREFECT_API_URL`, `PREFECT_HOME`, ...) are read through Prefect's
settings API (`prefect_value`), so a value set in a Prefect profile (`prefect config set`) or a
`.env` file counts exactly as it does for Prefect itself.

Standard library only: `spechestra --help` and `doctor --install` read settings without
importing Prefect.
"""

from __future__ import annotations

import contextlib
import contextvars
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator, Optional

from .errors import ConfigurationError

#: What the terminal shows instead of a secret's value.
HIDDEN = "[set, hidden]"


# --- parsers: text -> value, or a ValueError saying what was expected ---------------------------
def _text(raw: str) -> str:
    return raw


def _seconds(raw: str) -> float:
    value = float(raw)
    if value < 0 or value != value:
        raise ValueError
    return value


def _whole_seconds(raw: str) -> int:
    return int(_seconds(raw))


def _poll(raw: str) -> int:
    return max(1, int(_seconds(raw)))


def _whole(raw: str) -> int:
    value = int(raw)
    if value < 1:
        raise ValueError
    return value


def _crash_seconds(raw: str) -> float:
    """No shorter than one and a half heartbeats (Prefect sends one every 30 s at the most): a
    run between two heartbeats is never taken for a dead one."""
    value = _seconds(raw)
    if value < 45:
        raise ValueError
    return value


def _flag(raw: str) -> bool:
    if raw.strip().lower() in ("1", "true", "yes", "on"):
        return True
    if raw.strip().lower() in ("0", "false", "no", "off"):
        return False
    raise ValueError


FORMS: dict[Callable[[str], Any], str] = {
    _text: "text", _seconds: "a number of seconds (0 or more)", _whole_seconds: "a number of seconds (0 or more)",
    _whole: "a whole number, 1 or more", _poll: "a number of seconds (at least 1 is used)", _flag: "1/true/yes or 0/false/no",
    _crash_seconds: "a number of seconds, 45 or more",
}


@dataclass(frozen=True)
class Setting:
    """One setting. `names` are its variables, the first one set wins (`VISUAL`, then `EDITOR`)."""

    names: tuple[str, ...]
    default: Any
    description: str
    parse: Callable[[str], Any] = _text
    choices: tuple[str, ...] = ()
    secret: bool = False
    group: str = "spechestra"  # spechestra | provider | specsoloist

    @property
    def name(self) -> str:
        return self.names[0]

    @property
    def form(self) -> str:
        return "one of " + ", ".join(self.choices) if self.choices else FORMS[self.parse]

    def raw(self) -> tuple[Optional[str], Optional[str]]:
        """(the variable that is set, its text), or (None, None)."""
        override = _OVERRIDES.get().get(self.name)
        if override is not None:
            return self.name, override
        for name in self.names:
            value = os.environ.get(name)
            if value is not None and value.strip() != "":
                return name, value
        return None, None

    def value(self) -> Any:
        variable, raw = self.raw()
        if raw is None:
            return self.default
        text = raw.strip()
        if self.choices:
            if text.lower() not in self.choices:
                raise self._error(variable, raw)
            return text.lower()
        try:
            return self.parse(text)
        except ValueError:
            raise self._error(variable, raw) from None

    def _error(self, variable: Optional[str], raw: str) -> ConfigurationError:
        shown = HIDDEN if self.secret else repr(raw)
        return ConfigurationError(f"{variable}={shown} is not valid: expected {self.form}", setting=variable)


class Settings:
    """The settings, as attributes that read the environment at each access."""

    def __init__(self, **table: Setting):
        self._table = table

    def __getattr__(self, attr: str) -> Any:
        try:
            return self._table[attr].value()
        except KeyError:
            raise AttributeError(f"no setting {attr!r}") from None

    def __dir__(self) -> list[str]:
        return sorted(self._table)

    def setting(self, attr: str) -> Setting:
        return self._table[attr]

    def items(self) -> list[tuple[str, Setting]]:
        return list(self._table.items())

    def by_variable(self, variable: str) -> Setting:
        for setting in self._table.values():
            if variable in setting.names:
                return setting
        raise KeyError(variable)

    def of(self, variable: str) -> Any:
        """The value of the setting read from `variable` (a provider's key or URL variable)."""
        return self.by_variable(variable).value()

    setting_of = by_variable


S = Setting
settings = Settings(
    # --- the LLM -------------------------------------------------------------------------------
    provider=S(("SPECHESTRA_PROVIDER",), None, "LLM provider: anthropic, gemini, openai, openrouter, ollama, "
               "openai-compatible, replay:DIR, specsoloist:NAME or module:callable (else SPECSOLOIST_LLM_PROVIDER)."),
    api_key_block=S(("SPECHESTRA_API_KEY_BLOCK",), None, "Name of a Prefect Secret block holding the LLM API key "
                    "(read inside the run that needs it; only the name travels)."),
    base_url=S(("SPECHESTRA_BASE_URL",), None, "Base URL of the LLM server; required for openai-compatible, "
               "overrides any provider's."),
    api_key=S(("SPECHESTRA_API_KEY",), None, "API key for openai-compatible servers that want one.", secret=True),
    llm_timeout=S(("SPECHESTRA_LLM_TIMEOUT",), 300.0, "Seconds an LLM call may go without an answer "
                  "(then retried as a transient fault).", _seconds),
    llm_limit=S(("SPECHESTRA_LLM_LIMIT",), "spechestra-llm", "Prefect global concurrency limit every LLM call "
                "holds a slot of, when it exists."),
    llm_limit_wait=S(("SPECHESTRA_LLM_LIMIT_WAIT",), 900.0, "Seconds an LLM call waits for a slot of that limit "
                     "before its spec fails (no call is made, nothing is paid).", _seconds),
    prices=S(("SPECHESTRA_PRICES",), None, "JSON price table (US dollars per million tokens), inline or a file "
             "path; none: costs are not shown."),
    # --- building --------------------------------------------------------------------------------
    task_runner=S(("SPECHESTRA_TASK_RUNNER",), "threads", "Where a build's specs run: threads, dask (a local "
                  "cluster), dask:tcp://HOST:PORT, ray (a local Ray) or ray://HOST:PORT."),
    build_workers=S(("SPECHESTRA_BUILD_WORKERS",), None, "Specs at once on the local Dask cluster of the "
                    "`build` deployment (with SPECHESTRA_TASK_RUNNER=dask; unset: the build's max_workers default).",
                    _whole),
    lock_timeout=S(("SPECHESTRA_LOCK_TIMEOUT",), 600.0, "Seconds a build waits for another build of the same "
                   "project, and a compose for another compose writing its specs (0: refuse at once).", _seconds),
    # --- containing generated code (processes/sandbox.py) -----------------------------------------
    sandbox=S(("SPECHESTRA_SANDBOX",), "auto", "Contain generated code (tests, fixes, perform steps, setup "
              "commands) with bubblewrap: auto (where it works; says so when it cannot), required (refuse to run "
              "it otherwise) or off.", choices=("auto", "required", "off")),
    sandbox_memory_mb=S(("SPECHESTRA_SANDBOX_MEMORY_MB",), 4096, "Memory (MiB of data) each process of "
                        "generated code may allocate.", _whole),
    sandbox_processes=S(("SPECHESTRA_SANDBOX_PROCESSES",), 256, "Processes one run of generated code may "
                        "have at once.", _whole),
    sandbox_output_mb=S(("SPECHESTRA_SANDBOX_OUTPUT_MB",), 64, "MiB one run of generated code may print, "
                        "and the largest file it may write.", _whole),
    warm_tests=S(("SPECHESTRA_WARM_TESTS",), True, "Run specs' tests from a warm pytest (one sandbox per build "
                 "that forks a fresh, Landlock-restricted process per run) where bubblewrap and Landlock both work; "
                 "0: a new sandboxed interpreter per run.", _flag),
    # --- reviews ---------------------------------------------------------------------------------
    review_timeout=S(("SPECHESTRA_REVIEW_TIMEOUT",), 86400, "Seconds a review or checkpoint waits for an answer "
                     "before the run fails.", _whole_seconds),
    review_poll=S(("SPECHESTRA_REVIEW_POLL",), 1, "Seconds between checks for a review answer (Prefect's own "
                  "default is 10).", _poll),
    editor=S(("VISUAL", "EDITOR"), None, "The editor the terminal review opens for `edit`."),
    # --- the Prefect server ------------------------------------------------------------------------
    server=S(("SPECHESTRA_SERVER",), "managed", "With no PREFECT_API_URL: managed (one background server, "
             "reused) or temporary (a server per command).", choices=("managed", "temporary")),
    server_start_timeout=S(("SPECHESTRA_SERVER_START_TIMEOUT",), 300.0, "Seconds to wait for a local Prefect "
                           "server to start.", _seconds),
    server_grace=S(("SPECHESTRA_SERVER_GRACE",), 15.0, "Seconds a command waits for a server that refuses "
                   "connections before it stops.", _seconds),
    server_hang=S(("SPECHESTRA_SERVER_HANG",), 180.0, "Seconds a command waits for a server that accepts "
                  "connections but does not answer.", _seconds),
    crash_after=S(("SPECHESTRA_CRASH_AFTER",), 90.0, "Seconds without a heartbeat after which the automation "
                  "`spechestra deploy` sets up marks a deployment run Crashed (read at deploy time).", _crash_seconds),
    home=S(("SPECHESTRA_HOME",), None, "The checkout a worker runs deployments from (prefect.yaml's pull "
           "step reads it on the worker; unset: the checkout `spechestra deploy` ran in)."),
    projects=S(("SPECHESTRA_PROJECTS",), None, "Folder relative project_dir values are under (set it on every "
               "worker to storage they all see; a run on a worker creates new projects only there)."),
    skip_install_check=S(("SPECHESTRA_SKIP_INSTALL_CHECK",), False, "Skip the check that `import spechestra` "
                         "loads this project's files (for packagers).", _flag),
    # --- provider keys and addresses (read only when that provider is used) -------------------
    anthropic_api_key=S(("ANTHROPIC_API_KEY",), None, "Key for provider anthropic.", secret=True, group="provider"),
    gemini_api_key=S(("GEMINI_API_KEY",), None, "Key for provider gemini.", secret=True, group="provider"),
    openai_api_key=S(("OPENAI_API_KEY",), None, "Key for provider openai.", secret=True, group="provider"),
    openrouter_api_key=S(("OPENROUTER_API_KEY",), None, "Key for provider openrouter.", secret=True,
                         group="provider"),
    anthropic_base_url=S(("ANTHROPIC_BASE_URL",), "https://api.anthropic.com", "Base URL of provider anthropic.",
                         group="provider"),
    gemini_base_url=S(("GEMINI_BASE_URL",), "https://generativelanguage.googleapis.com",
                      "Base URL of provider gemini.", group="provider"),
    openai_base_url=S(("OPENAI_BASE_URL",), "https://api.openai.com/v1", "Base URL of provider openai.",
                      group="provider"),
    openrouter_base_url=S(("OPENROUTER_BASE_URL",), "https://openrouter.ai/api/v1",
                          "Base URL of provider openrouter.", group="provider"),
    ollama_base_url=S(("OLLAMA_BASE_URL",), "http://localhost:11434", "Base URL of provider ollama (the "
                      "server's root).", group="provider"),
    # --- SpecSoloist's own (SpecSoloistConfig.from_env reads them too) ---------------------------
    llm_provider=S(("SPECSOLOIST_LLM_PROVIDER",), None, "SpecSoloist's provider name, used when "
                   "SPECHESTRA_PROVIDER is unset (unset too: SpecSoloist's default, gemini).", group="specsoloist"),
    llm_model=S(("SPECSOLOIST_LLM_MODEL",), None, "The model (else the provider's default).", group="specsoloist"),
    src_dir=S(("SPECSOLOIST_SRC_DIR",), None, "Where a project's specs live (unset: src).", group="specsoloist"),
)
del S

#: Prefect settings Spechestra uses, shown by `spechestra settings` (read through Prefect's API).
PREFECT_SETTINGS = {
    "PREFECT_API_URL": "The Prefect API every command and flow run uses (none: the managed local server).",
    "PREFECT_UI_URL": "Where run links point (else derived from PREFECT_API_URL).",
    "PREFECT_HOME": "Prefect's folder: run history (SQLite), profiles, the managed server's state and log.",
    "PREFECT_API_DATABASE_CONNECTION_URL": "The database of a server started here (default: SQLite in PREFECT_HOME).",
    "PREFECT_API_KEY": "Prefect Cloud API key.",
    "PREFECT_API_AUTH_STRING": "user:password for a server with basic authentication.",
    "PREFECT_API_SSL_CERT_FILE": "The CA bundle an https server is verified with (default: SSL_CERT_FILE, else certifi's).",
    "PREFECT_API_TLS_INSECURE_SKIP_VERIFY": "Do not verify an https server's certificate (true/false).",
}
PREFECT_SECRETS = frozenset({"PREFECT_API_KEY", "PREFECT_API_AUTH_STRING", "PREFECT_API_DATABASE_CONNECTION_URL"})

_OVERRIDES: contextvars.ContextVar[dict[str, str]] = contextvars.ContextVar("spechestra_settings", default={})


@contextlib.contextmanager
def temporary_settings(**values: Any) -> Iterator[None]:
    """Settings (by attribute name) overridden inside the block, for this context only: the
    threads Prefect runs tasks in inherit it, other processes do not (set their environment)."""
    table = {settings.setting(attr).name: str(value) for attr, value in values.items()}
    token = _OVERRIDES.set({**_OVERRIDES.get(), **table})
    try:
        yield
    finally:
        _OVERRIDES.reset(token)


# --- the environment as a whole, for child processes and for Prefect ------------------------
def cache_dir() -> Path:
    """Where Spechestra keeps what is worth keeping between PREFECT_HOMEs (the XDG cache)."""
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "spechestra"


def environment(drop: tuple[str, ...] = (), **changes: str) -> dict[str, str]:
    """A copy of this process's whole environment with `changes`, without `drop`: what a child
    process (a server, a test run, `prefect deploy`) is started with."""
    env = dict(os.environ)
    for name in drop:
        env.pop(name, None)
    env.update(changes)
    return env


def export(name: str, value: str, only_if_unset: bool = False) -> None:
    """Set a variable for this process and the processes it starts (Prefect reads its own settings
    from the environment when it is first imported)."""
    if only_if_unset:
        os.environ.setdefault(name, value)
    else:
        os.environ[name] = value


def variable_is_set(name: str) -> bool:
    return bool(os.environ.get(name, "").strip())


def colour_wanted() -> bool:
    """Colour codes for what others print into our output (Ray's log prefixes): only to a terminal,
    and never with NO_COLOR set (https://no-color.org), as Rich decides for our own lines."""
    return not variable_is_set("NO_COLOR") and sys.stdout.isatty() and sys.stderr.isatty()


def secret_values() -> list[str]:
    """The values of every secret setting that is set (the keys redaction must hide)."""
    found = []
    for _, setting in settings.items():
        if setting.secret:
            _, raw = setting.raw()
            if raw:
                found.append(raw.strip())
    return found


# --- Prefect's settings ------------------------------------------------------------------------
def prefect_value(name: str) -> Optional[str]:
    """A Prefect setting as Prefect sees it (environment, active profile, .env, default)."""
    import prefect.settings  # deferred: Prefect's import costs about a second
    value = getattr(prefect.settings, name).value()
    return None if value in (None, "") else str(value)


def prefect_source(name: str) -> str:
    """Where Prefect's value of `name` comes from: environment, the active profile, .env, default."""
    if variable_is_set(name):
        return "environment"
    from prefect.context import get_settings_context
    profile = get_settings_context().profile
    if any(getattr(key, "name", key) == name for key in profile.settings):
        return f"Prefect profile {profile.name!r}"
    with contextlib.suppress(ImportError, OSError):
        from dotenv import dotenv_values
        if Path(".env").is_file() and dotenv_values(".env").get(name):
            return ".env file"
    return "default"


def prefect_home() -> Path:
    """PREFECT_HOME as Prefect resolves it; from the environment alone when Prefect cannot be
    imported (`doctor` must explain a broken install)."""
    try:
        home = prefect_value("PREFECT_HOME")
    except Exception:  # Prefect missing or damaged: fall back to its documented default
        home = os.environ.get("PREFECT_HOME")
    return Path(home or "~/.prefect").expanduser()


def prefect_database_url() -> str:
    try:
        return prefect_value("PREFECT_API_DATABASE_CONNECTION_URL") or ""
    except Exception:
        return os.environ.get("PREFECT_API_DATABASE_CONNECTION_URL", "")


# --- what `spechestra settings` prints ---------------------------------------------------------
@dataclass(frozen=True)
class Row:
    variable: str
    value: str
    source: str
    description: str


def rows(with_prefect: bool = True) -> list[Row]:
    """Every setting, its value as used (secrets hidden) and where it came from."""
    found = []
    for _, setting in settings.items():
        variable, raw = setting.raw()
        if raw is None:
            value, source = ("-" if setting.default is None else str(setting.default)), "default"
        else:
            source = "override" if setting.name in _OVERRIDES.get() else "environment"
            value = HIDDEN if setting.secret else raw
            try:
                setting.value()
            except ConfigurationError as exc:
                value, source = f"{value} (INVALID: expected {setting.form})", f"environment; {exc.setting}"
        found.append(Row(variable or setting.name, value, source, setting.description))
    if with_prefect:
        for name, description in PREFECT_SETTINGS.items():
            current: Optional[str]
            try:
                current, source = prefect_value(name), prefect_source(name)
            except Exception as exc:  # Prefect not importable: say so, the rest still helps
                current, source = None, f"unknown (Prefect: {type(exc).__name__})"
            secret = name in PREFECT_SECRETS and source != "default"  # Prefect's default holds no password
            shown = "-" if current is None else (HIDDEN if secret else current)
            found.append(Row(name, shown, source, description))
    return found
