"""Keeping API keys out of everything Spechestra writes or hands to Prefect.

A key reaches a run from the environment, a Prefect Secret block or a setting; a provider that
fails, logs or prints may repeat it. Once a key is known here (`register`; the key variables in
the environment are known from `install`), every log record is redacted when it is created (so
no handler, Prefect's API handler included, ever sees the key), the process's stdout and stderr
are redacted as they are written, and provider errors are re-raised redacted by the meter before
Prefect turns them into state messages, events and stored results.
"""

from __future__ import annotations

import copy
import dataclasses
import logging
import sys
import threading
from typing import Any, Optional

from pydantic import BaseModel

from .settings import secret_values
from .streams import Wrapped

MASK = "[redacted]"
MIN_LENGTH = 6  # shorter values would mask ordinary words; no real key is that short

_secrets: set[str] = set()
_lock = threading.Lock()
_installed = False


def register(value: Optional[str]) -> None:
    """Treat `value` as a secret from now on (and make sure the redaction is in place)."""
    if value and len(value) >= MIN_LENGTH:
        with _lock:
            _secrets.add(value)
        install()


def known() -> bool:
    return bool(_secrets)


def redact(text: str) -> str:
    if not _secrets or not text:
        return text
    for secret in sorted(_secrets, key=len, reverse=True):
        if secret in text:
            text = text.replace(secret, MASK)
    return text


def contains_secret(text: str) -> bool:
    # A copy (made in one step): another thread may register a provider's key meanwhile.
    return any(secret in text for secret in tuple(_secrets))


def scrub(value: Any) -> Any:
    """`value` with every known key masked in every string it holds (models, dataclasses,
    containers, exceptions' arguments), as a copy: what Prefect stores as a result is built from
    generated code's output, which may have read a key from a file. The original is untouched."""
    if not _secrets:
        return value
    return _scrub(value, set())


def _scrub(value: Any, seen: set) -> Any:
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, (int, float, bool, bytes, type(None))) or id(value) in seen:
        return value
    seen = seen | {id(value)}  # a structure that refers to itself is copied once, never looped
    if isinstance(value, BaseModel):
        return value.model_copy(update={name: _scrub(getattr(value, name), seen) for name in type(value).model_fields})
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.replace(value, **{f.name: _scrub(getattr(value, f.name), seen)
                                             for f in dataclasses.fields(value) if f.init})
    if type(value) in (list, tuple, set, frozenset):
        return type(value)(_scrub(item, seen) for item in value)
    if type(value) is dict:
        return {_scrub(k, seen): _scrub(v, seen) for k, v in value.items()}
    if isinstance(value, BaseException):
        try:
            clean = copy.copy(value)
            clean.args = tuple(_scrub(arg, seen) for arg in value.args)
            for name, field in vars(value).items():
                setattr(clean, name, _scrub(field, seen))
            return clean
        except Exception:  # an exception that cannot be copied: its text, masked, is what is kept
            return RuntimeError(redact(f"{type(value).__name__}: {value}"))
    return value


class RedactingStream(Wrapped):
    """A text stream that redacts what is written to it, then passes it on."""

    def write(self, text: str) -> int:
        self.inner.write(redact(text))
        return len(text)


def _redacting_factory(make):
    formatter = logging.Formatter()

    def factory(*args, **kwargs):
        record = make(*args, **kwargs)
        if _secrets:
            try:
                message = record.getMessage()
            except Exception:  # a bad format string: leave it to the handler, as logging does
                return record
            record.msg, record.args = redact(message), None
            if record.exc_info and not record.exc_text:
                record.exc_text = redact(formatter.formatException(record.exc_info))
        return record

    return factory


def install() -> None:
    """Idempotent: know the environment's keys and, once any key is known, redact log records
    and the standard streams (a process with no key is left exactly as it was)."""
    global _installed
    for value in secret_values():
        if len(value) >= MIN_LENGTH:
            with _lock:
                _secrets.add(value)
    with _lock:
        if _installed or not _secrets:
            return
        _installed = True
    logging.setLogRecordFactory(_redacting_factory(logging.getLogRecordFactory()))
    for name in ("stdout", "stderr"):
        stream = getattr(sys, name)
        if stream is not None and not isinstance(stream, RedactingStream):
            setattr(sys, name, RedactingStream(stream))
