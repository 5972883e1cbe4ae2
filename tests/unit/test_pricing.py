"""The price table setting: JSON inline or in a file; a clear error naming what is wrong."""

import json

import pytest

from spechestra.core.pricing import PriceTableError, cost, price_table


def test_inline_and_file_tables_price_calls(tmp_path, monkeypatch):
    table = {"m": {"input": 2, "output": 10}}
    monkeypatch.setenv("SPECHESTRA_PRICES", json.dumps(table))
    assert cost("m", 1_000_000, 500_000) == pytest.approx(2 + 5) and cost("other", 10, 10) is None
    (tmp_path / "prices.json").write_text(json.dumps(table))
    monkeypatch.setenv("SPECHESTRA_PRICES", str(tmp_path / "prices.json"))
    assert price_table() == {"m": {"input": 2.0, "output": 10.0}}


@pytest.mark.parametrize("value, message", [("{not json", "SPECHESTRA_PRICES: expected"),
                                            ('{"m": {"input": 1}}', "KeyError"),
                                            ("/no/such/prices.json", "cannot read /no/such/prices.json")])
def test_a_bad_table_is_named(value, message, monkeypatch):
    monkeypatch.setenv("SPECHESTRA_PRICES", value)
    with pytest.raises(PriceTableError, match=message):
        price_table()
