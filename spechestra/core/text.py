"""Small text helpers for messages, tables and logs."""

from __future__ import annotations

from typing import Optional


def first_line(text: Optional[str], limit: Optional[int] = None) -> str:
    """The first non-empty line of `text` ("" for none or an empty message), cut to `limit`."""
    for line in (text or "").splitlines():
        if line.strip():
            return line.strip()[:limit]
    return ""
