"""Turning tokens into an estimated cost, from a price table the user keeps.

Prices change more often than releases, so none are built in: `SPECHESTRA_PRICES` names a JSON
file (or holds the JSON itself) mapping a model to US dollars per million tokens, e.g.
`{"claude-sonnet-4-20250514": {"input": 3, "output": 15}, "llama3": {"input": 0, "output": 0}}`.
A model missing from the table has no cost (shown as "-"), never a guess.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

from ..errors import ConfigurationError
from ..settings import settings

#: A bad table: a ConfigurationError naming SPECHESTRA_PRICES (kept under its old name).
PriceTableError = ConfigurationError


def price_table() -> dict[str, dict[str, float]]:
    raw = (settings.prices or "").strip()
    if not raw:
        return {}
    source = "SPECHESTRA_PRICES"
    if not raw.startswith("{"):
        source = raw
        try:
            raw = Path(raw).read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigurationError(f"SPECHESTRA_PRICES: cannot read {source}: {exc.strerror}",
                                     setting="SPECHESTRA_PRICES") from None
    try:
        table = json.loads(raw)
        return {str(model): {"input": float(p["input"]), "output": float(p["output"])} for model, p in table.items()}
    except (ValueError, TypeError, KeyError, AttributeError) as exc:
        raise ConfigurationError(f"{source}: expected {{\"model\": {{\"input\": usd_per_million, \"output\": "
                                 f"usd_per_million}}}}: {type(exc).__name__}: {exc}", setting="SPECHESTRA_PRICES") from None


def cost(model: Optional[str], input_tokens: int, output_tokens: int,
         table: Optional[dict] = None) -> Optional[float]:
    """US dollars for one call's tokens, or None when the model has no price."""
    prices = (price_table() if table is None else table).get(model or "")
    if prices is None:
        return None
    return (input_tokens * prices["input"] + output_tokens * prices["output"]) / 1_000_000


def spending(outcomes: list) -> str:
    """This run's calls, tokens and (when priced) cost, in words; "~" marks estimated tokens."""
    calls = sum(o.llm_calls for o in outcomes)
    tokens_in, tokens_out = sum(o.input_tokens for o in outcomes), sum(o.output_tokens for o in outcomes)
    approx = "~" if any(o.tokens_estimated for o in outcomes) else ""
    costs = [o.cost_usd for o in outcomes if o.cost_usd is not None]
    cost = f", ${sum(costs):.4f}" if costs else ""
    return f"{calls} LLM call(s), {approx}{tokens_in} in / {approx}{tokens_out} out tokens{cost}"


def summary_words(summary: dict) -> str:
    """The same words from a meter's `summary()` (compose, pipeline and live progress)."""
    approx = "~" if summary.get("tokens_estimated") else ""
    cost = f", ${summary['cost_usd']:.4f}" if summary.get("cost_usd") is not None else ""
    return (f"{summary.get('calls', 0)} LLM call(s), {approx}{summary.get('input_tokens', 0)} in / "
            f"{approx}{summary.get('output_tokens', 0)} out tokens{cost}")
