"""The inspector's policies file: every key loads, every bad value is an error naming its key,
and a policy diff names each changed key."""

from __future__ import annotations

from decimal import Decimal

import pytest

from trademesh.core.inspector.engine.diff import diff_policies, flatten_policies, loosenings
from trademesh.core.inspector.engine.policies import PolicySet, PositionPolicy, Window
from trademesh.core.inspector.engine.policy_file import load_policies, read_policies
from trademesh.core.inspector.shipped import shipped_policies
from trademesh.core.platform.errors import InvalidArgument

FULL = """
[position]
max_size = "2"
max_notional = "150000"
[position.symbols."BTC/USDT"]
max_size = "0.5"
[exposure]
max_gross = "500000"
max_net = 250000
[loss]
max_daily_drawdown = "0.03"
max_drawdown = 0.1
max_loss_streak = 4
cooldown_after_loss_ms = 60000
[schedule]
timezone = "Europe/Berlin"
windows = { mon = ["08:00-12:00", "13:00-24:00"], fri = ["00:00-16:30"] }
[orders]
max_notional = "25000"
max_open = 10
price_band = "0.02"
[rate]
window_ms = 2000
max_per_venue = 20
max_per_strategy = 5
[capital]
reserved = { trend = "40000", "mean-rev" = "10000" }
default_reserved = "1000"
[protect]
stop_loss = "0.015"
take_profit = "0.03"
trailing_stop = "0.01"
trailing_step = "0.002"
"""


def test_a_full_policies_file_loads_every_key_exactly() -> None:
    p = load_policies(FULL)
    assert p.position.limit_for("BTC/USDT").max_size == Decimal("0.5")
    assert p.position.limit_for("BTC/USDT").max_notional == Decimal(150000)  # the default fills in
    assert p.position.limit_for("ETH/USDT").max_size == Decimal(2)
    assert p.exposure.max_net == Decimal(250000)
    assert p.loss.max_drawdown == Decimal("0.1")
    assert p.loss.max_loss_streak == 4
    assert p.schedule.windows["mon"] == (Window(480, 720), Window(780, 1440))
    assert p.orders.price_band == Decimal("0.02")
    assert p.rate.max_per_strategy == 5
    assert p.capital.reserved_for("mean-rev") == Decimal(10000)
    assert p.capital.reserved_for("other") == Decimal(1000)
    assert p.protect.trailing_stop == Decimal("0.01")


def test_an_empty_file_is_the_default_set_with_every_limit_off() -> None:
    p = load_policies("")
    assert p == PolicySet()
    assert p.position.limit_for("X").max_size is None
    assert p.orders.max_open is None


BAD = [
    ('[position]\nmax_size = "0"', "position.max_size"),
    ('[position]\nmax_size = "-1"', "position.max_size"),
    ('[position]\nmax_notional = "abc"', "position.max_notional"),
    ('[position]\nmax_notional = "NaN"', "position.max_notional"),
    ("[position]\nmax_notional = true", "position.max_notional"),
    ('[position.symbols."BTC/USDT"]\nmax_size = "0"', "position.symbols.BTC/USDT.max_size"),
    ('[position.symbols."BTC/USDT"]\nlimit = "1"', "position.symbols.BTC/USDT.limit"),
    ('[position]\nsymbols = "BTC"', "position.symbols"),
    ('[exposure]\nmax_gross = "1e16"', "exposure.max_gross"),
    ('[exposure]\nmax_net = "-5"', "exposure.max_net"),
    ('[loss]\nmax_daily_drawdown = "1.5"', "loss.max_daily_drawdown"),
    ('[loss]\nmax_drawdown = "0"', "loss.max_drawdown"),
    ("[loss]\nmax_loss_streak = 0", "loss.max_loss_streak"),
    ("[loss]\nmax_loss_streak = 2.5", "loss.max_loss_streak"),
    ("[loss]\ncooldown_after_loss_ms = -1", "loss.cooldown_after_loss_ms"),
    ('[schedule]\ntimezone = "Mars/Olympus"', "schedule.timezone"),
    ("[schedule]\ntimezone = 3", "schedule.timezone"),
    ('[schedule]\nwindows = { funday = ["08:00-09:00"] }', "schedule.windows.funday"),
    ('[schedule]\nwindows = { mon = ["09:00-08:00"] }', "schedule.windows.mon"),
    ('[schedule]\nwindows = { mon = ["8-9"] }', "schedule.windows.mon"),
    ('[schedule]\nwindows = { mon = "08:00-09:00" }', "schedule.windows.mon"),
    ('[schedule]\nwindows = { mon = ["08:61-09:00"] }', "schedule.windows.mon"),
    ('[orders]\nmax_notional = "0"', "orders.max_notional"),
    ("[orders]\nmax_open = 0", "orders.max_open"),
    ('[orders]\nmax_open = "5"', "orders.max_open"),
    ('[orders]\nprice_band = "2"', "orders.price_band"),
    ("[rate]\nwindow_ms = 0", "rate.window_ms"),
    ("[rate]\nmax_per_venue = 0", "rate.max_per_venue"),
    ("[rate]\nmax_per_strategy = -3", "rate.max_per_strategy"),
    ('[capital]\nreserved = { trend = "0" }', "capital.reserved.trend"),
    ('[capital]\nreserved = { trend = "x" }', "capital.reserved.trend"),
    ('[capital]\ndefault_reserved = "-1"', "capital.default_reserved"),
    ('[protect]\nstop_loss = "0"', "protect.stop_loss"),
    ('[protect]\ntake_profit = "3"', "protect.take_profit"),
    ('[protect]\ntrailing_stop = "1.01"', "protect.trailing_stop"),
    ('[protect]\ntrailing_step = "-0.1"', "protect.trailing_step"),
    ("[orders]\nmax_orders = 3", "orders.max_orders"),
    ("[risk]\nmax = 1", "risk"),
    ("position = 3", "position"),
]


@pytest.mark.parametrize(("text", "key"), BAD, ids=[k for _, k in BAD])
def test_a_bad_value_is_an_error_naming_its_key(text: str, key: str) -> None:
    with pytest.raises(InvalidArgument) as caught:
        load_policies(text)
    assert [v.field for v in caught.value.violations] == [key]


def test_the_error_quotes_the_bad_value() -> None:
    said = r"^loss\.max_drawdown: must be more than 0 and at most 1, got 1\.5$"
    with pytest.raises(InvalidArgument, match=said):
        load_policies('[loss]\nmax_drawdown = "1.5"')


def test_a_policy_file_named_is_named_in_every_error() -> None:
    text = '[loss]\nmax_drawdown = "1.5"\n[orders]\nmax_opn = 3\n[risk]\n'
    with pytest.raises(InvalidArgument) as caught:
        read_policies(text, PolicySet(), "/etc/trademesh/policies.toml")
    assert {v.field: v.description for v in caught.value.violations} == {
        "risk": "unknown key; known: position, exposure, loss, schedule, orders, rate, capital, protect, "
        "account, leverage, liquidation, margin, remove (in /etc/trademesh/policies.toml)",
        "orders.max_opn": "unknown key; known: max_notional, max_open, price_band "
        "(in /etc/trademesh/policies.toml)",
        "loss.max_drawdown": "must be more than 0 and at most 1, got 1.5 (in /etc/trademesh/policies.toml)",
    }


def test_text_that_is_not_toml_is_an_error() -> None:
    with pytest.raises(InvalidArgument) as caught:
        load_policies("[position\n")
    assert caught.value.violations[0].field == "policies"


def test_the_policy_set_and_its_maps_are_frozen() -> None:
    p = load_policies(FULL)
    with pytest.raises(AttributeError):
        p.position.max_size = Decimal(1)  # type: ignore[misc]
    with pytest.raises(TypeError):
        p.position.symbols["ETH/USDT"] = p.position.symbols["BTC/USDT"]  # type: ignore[index]


def test_the_diff_of_two_sets_names_each_changed_key_with_old_and_new() -> None:
    old = load_policies(FULL)
    new = load_policies(FULL.replace('max_size = "0.5"', 'max_size = "0.75"').replace("max_open = 10", ""))
    changes = {c.key: (c.old, c.new) for c in diff_policies(old, new)}
    assert changes == {
        "position.symbols.BTC/USDT.max_size": ("0.5", "0.75"),
        "orders.max_open": ("10", "off"),
    }


def test_equal_sets_have_no_diff_and_every_key_is_flattened() -> None:
    p = load_policies(FULL)
    assert diff_policies(p, load_policies(FULL)) == ()
    flat = flatten_policies(p)
    assert flat["schedule.windows.mon"] == "08:00-12:00, 13:00-24:00"
    assert flat["capital.reserved.mean-rev"] == "10000"


def test_a_symbol_limit_made_in_code_is_checked_too() -> None:
    from trademesh.core.inspector.engine.policies import SymbolLimit

    with pytest.raises(InvalidArgument) as caught:
        PositionPolicy(symbols={"ETH/USDT": SymbolLimit(max_notional=Decimal(-1))})
    assert caught.value.violations[0].field == "position.symbols.ETH/USDT.max_notional"


def _docs() -> str:
    from pathlib import Path

    return (Path(__file__).parents[2] / "docs" / "inspector.md").read_text()


def test_the_docs_example_policies_file_loads() -> None:
    doc = _docs()
    example = doc.split("```toml\n", 1)[1].split("```", 1)[0]
    p = load_policies(example)
    assert p.capital.reserved_for("mean-rev") == Decimal(10000)
    assert p.schedule.windows["tue"] == (Window(480, 1320),)


def test_the_docs_table_lists_every_policy_key() -> None:
    from dataclasses import fields

    doc = _docs()
    for section in fields(PolicySet):
        for key in fields(getattr(PolicySet(), section.name)):
            assert f"| `{section.name}.{key.name}" in doc, (
                f"docs/inspector.md does not list {section.name}.{key.name}"
            )


# ---- an operator's file over the shipped set (issue 37, item 21)


def _shipped() -> PolicySet:
    from trademesh.core.inspector.shipped import shipped_policies

    return shipped_policies()


def test_an_empty_update_keeps_every_shipped_limit() -> None:
    update = read_policies("", _shipped())
    assert update.policies == _shipped() and update.removed == ()
    assert update.policies.loss.max_drawdown == Decimal("0.10")


def test_a_key_left_out_keeps_its_shipped_value_and_a_key_given_replaces_it() -> None:
    p = read_policies('[orders]\nmax_open = 3\n[position.symbols."BTC/USDT"]\nmax_size = "0.5"', _shipped())
    assert p.policies.orders.max_open == 3
    assert p.policies.orders.max_notional == Decimal(10000)  # shipped
    assert p.policies.position.max_notional == Decimal(20000)  # shipped, beside the symbol's own
    assert p.policies.position.limit_for("BTC/USDT").max_size == Decimal("0.5")


def test_remove_turns_limits_off_explicitly() -> None:
    text = 'remove = ["loss.max_drawdown", "orders.price_band", "loss.cooldown_after_loss_ms"]\n'
    p = read_policies(text, _shipped())
    assert p.removed == ("loss.cooldown_after_loss_ms", "loss.max_drawdown", "orders.price_band")
    assert p.policies.loss.max_drawdown is None and p.policies.orders.price_band is None
    assert p.policies.loss.max_daily_drawdown == Decimal("0.05")  # not named: kept
    changes = {c.key: (c.old, c.new) for c in diff_policies(_shipped(), p.policies)}
    assert changes == {"loss.max_drawdown": ("0.10", "off"), "orders.price_band": ("0.05", "off")}


REMOVALS = [
    ('remove = "loss.max_drawdown"', "remove", "is not a list"),
    ('remove = ["loss.max_gain"]', "remove[0]", "is not a policy key"),
    ('remove = ["max_drawdown"]', "remove[0]", "is not a policy key"),
    ('remove = ["rate.window_ms"]', "remove[0]", "cannot be turned off"),
    ('remove = ["protect.stop_loss"]', "remove[0]", "cannot be turned off"),
    ('remove = ["loss.max_drawdown"]\n[loss]\nmax_drawdown = "0.2"', "remove[0]", "both set and removed"),
]


@pytest.mark.parametrize(("text", "field", "words"), REMOVALS, ids=[t for t, _, _ in REMOVALS])
def test_a_bad_removal_is_named(text: str, field: str, words: str) -> None:
    with pytest.raises(InvalidArgument) as caught:
        read_policies(text, _shipped())
    assert [v.field for v in caught.value.violations] == [field]
    assert words in caught.value.violations[0].description


def test_the_set_is_checked_as_a_whole_every_bad_key_at_once() -> None:
    text = '[loss]\nmax_drawdown = "2"\nmax_loss_streak = 0\n[orders]\nmax_open = "x"\n[risk]\na = 1\n'
    with pytest.raises(InvalidArgument) as caught:
        read_policies(text, _shipped())
    fields = {v.field for v in caught.value.violations}
    assert fields == {"risk", "orders.max_open", "loss.max_drawdown", "loss.max_loss_streak"}


ODD_KEYS = """
[position.symbols."A\\"B\\\\C\\u0001\\u007f é 😀"]
max_size = "1E+3"
[schedule]
timezone = "Europe/Berlin"
windows = { mon = ["08:00-24:00"], sat = [] }
[capital]
reserved = { "mean-rev" = "10000", "a b" = "1" }
"""


@pytest.mark.parametrize("text", [FULL, ODD_KEYS, "", "[loss]\ncooldown_after_loss_ms = 5\n"])
def test_a_set_written_for_the_journal_reads_back_the_same(text: str) -> None:
    from trademesh.core.inspector.engine.policy_dump import dump_policies

    for policies in (load_policies(text), read_policies(text, _shipped()).policies):
        assert load_policies(dump_policies(policies)) == policies


def test_a_journal_written_before_replays_the_same() -> None:
    """Journals hold policy text: one written before holds an operator's file as it was, where a
    key left out was off, and it is read so still (only an operator's file is read over the
    shipped set; the journal's text is the complete set)."""
    from trademesh.core.inspector.driver import apply_entry, new_core
    from trademesh.core.inspector.engine.policies import OrderPolicy
    from trademesh.risk.v1 import journal_pb2 as jr

    start = jr.JournalStart(policies="[orders]\nmax_open = 3\n", starting_equity="100000", instance="i")
    c = new_core(jr.JournalEntry(now_ns=1, start=start))
    assert c.policies == PolicySet(orders=OrderPolicy(max_open=3))
    apply_entry(c, jr.JournalEntry(now_ns=2, policies=""))
    assert c.policies == PolicySet()


def _changes(text: str) -> list[str]:
    base = shipped_policies()
    return loosenings(diff_policies(base, read_policies(text, base).policies))


def test_a_lower_limit_or_one_set_where_it_was_off_is_a_tightening() -> None:
    assert _changes('[loss]\nmax_drawdown = "0.09"\n[orders]\nmax_open = 10\n') == []
    assert (
        _changes('[capital.reserved]\n"trend" = "500"\n[position.symbols."BTC/USDT"]\nmax_size = "1"\n') == []
    )
    assert _changes('[account.venues."binance.desk-a"]\nmax_gross = "1000"\n') == []


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ('[loss]\nmax_drawdown = "0.2"\n', "loss.max_drawdown: 0.10 -> 0.2 does not lower it"),
        ('remove = ["exposure.max_net"]\n', "exposure.max_net: 40000 -> off turns the limit off"),
        ("[loss]\ncooldown_after_loss_ms = 5000\n", "loss.cooldown_after_loss_ms: not a limit"),
        ("[rate]\nwindow_ms = 10\n", "rate.window_ms: not a limit"),
    ],
)
def test_a_change_that_loosens_or_is_not_a_limit_is_named(text: str, words: str) -> None:
    (found,) = _changes(text)
    assert words in found, found
