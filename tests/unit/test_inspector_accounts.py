"""Policies per account (docs/accounts.md): an account is its own venue ("sim.desk-a"), and the
`account` section caps each venue's book and orders apart: one account's positions never count
against another's limit, and a venue's own limit overrides the section's default."""

from __future__ import annotations

from dataclasses import replace

import pytest

from tests.inspector_support import T0, D, core, fill, intent, market
from tests.unit.test_inspector_checks import refused
from trademesh.core.inspector.engine.diff import diff_policies
from trademesh.core.inspector.engine.events import RiskAction
from trademesh.core.inspector.engine.policies import AccountLimit, AccountPolicy, PolicySet
from trademesh.core.inspector.engine.policy_dump import dump_policies
from trademesh.core.inspector.engine.policy_file import load_policies, read_policies
from trademesh.core.inspector.views import policy_status
from trademesh.core.platform.errors import InvalidArgument

DESK_A, DESK_B = "sim.desk-a", "sim.desk-b"
POLICIES = """
[account]
max_gross = "500"
[account.venues."sim.desk-a"]
max_gross = "300"
max_order_notional = "200"
"""


def test_an_accounts_gross_limit_counts_its_own_venues_book_alone() -> None:
    c = core(read_policies(POLICIES, PolicySet()).policies)
    # desk-b: 4 at 100 (400 <= the default 500); desk-a: 2 at 100 (200 <= its own 300).
    assert c.on_intent(intent(size="4", venue=DESK_B), market(), T0).allowed
    assert c.on_intent(intent(size="2", venue=DESK_A), market(), T0).allowed
    # desk-a's next 1.01 makes 301 there: over its own 300, whatever desk-b holds.
    values = refused(c.on_intent(intent(size="1.01", venue=DESK_A), market(), T0), "account.max_gross")
    assert (D(values["value"]), D(values["limit"])) == (D("301"), D("300"))
    assert c.on_intent(intent(size="1", venue=DESK_A), market(), T0).allowed  # at its limit: passes
    # desk-b's next 1.01 makes 501 there: over the section's 500 (desk-a's 300 not counted).
    refused(c.on_intent(intent(size="1.01", venue=DESK_B), market(), T0), "account.max_gross")
    assert c.on_intent(intent(size="1", venue=DESK_B), market(), T0).allowed


def test_an_accounts_order_notional_limit_is_its_own() -> None:
    c = core(read_policies(POLICIES, PolicySet()).policies)
    values = refused(
        c.on_intent(intent(size="2.01", venue=DESK_A), market(), T0), "account.max_order_notional"
    )
    assert values == {"value": "201", "limit": "200"}  # shown as the API shows decimals
    # desk-b has no order limit: the same order passes there.
    assert c.on_intent(intent(size="2.01", venue=DESK_B), market(), T0).action is RiskAction.ALLOW


def test_the_account_section_reads_dumps_and_diffs_like_the_others() -> None:
    policies = read_policies(POLICIES, PolicySet()).policies
    assert policies.account.limit_for(DESK_A) == AccountLimit(D(300), D(200))
    assert policies.account.limit_for(DESK_B) == AccountLimit(D(500), None)
    assert load_policies(dump_policies(policies)) == policies
    changed = {c.key: (c.old, c.new) for c in diff_policies(PolicySet(), policies)}
    assert changed["account.venues.sim.desk-a.max_gross"] == ("off", "300")


@pytest.mark.parametrize(
    ("text", "field"),
    [
        ('[account.venues."sim.desk-a"]\nmax_gross = "0"', "account.venues.sim.desk-a.max_gross"),
        ('[account.venues."sim.desk-a"]\nmax_exposure = "1"', "account.venues.sim.desk-a.max_exposure"),
        ('[account]\nmax_order_notional = "-5"', "account.max_order_notional"),
    ],
)
def test_a_bad_account_key_is_refused_naming_it(text: str, field: str) -> None:
    with pytest.raises(InvalidArgument) as refused_:
        read_policies(text, PolicySet(), "policies.toml")
    assert field in [v.field for v in refused_.value.violations] or field in str(refused_.value)


def test_the_policy_status_shows_each_accounts_gross_against_its_limit() -> None:
    c = core(PolicySet(account=AccountPolicy(venues={DESK_A: AccountLimit(max_gross=D(400))})))
    assert c.on_intent(intent(size="1", venue=DESK_A), market(), T0).allowed
    rows = {s.key: (s.value, s.limit) for s in policy_status(c)}
    assert rows["account.venues.sim.desk-a.max_gross"] == ("100", "400")
    assert not any(DESK_B in key for key in rows)


def test_two_accounts_fills_of_the_same_id_are_each_applied() -> None:
    """Two venues number their fills alike (two sims both start at 1): a fill id is the venue's,
    so desk-b's fill "fill-x" is not taken for desk-a's, while each is still applied once."""
    c = core(PolicySet())
    for venue, size in ((DESK_A, "0.01"), (DESK_B, "0.004")):
        order = c.on_intent(intent(size=size, venue=venue, price=None), market(), T0).orders[0]
        same = replace(fill(order), fill_id="fill-x")
        c.on_fill(venue, same, T0)
        c.on_fill(venue, same, T0)  # redelivered: once
    held = {key[0]: p.size for key, p in c.book.positions.positions.items()}
    assert held == {DESK_A: D("0.01"), DESK_B: D("0.004")}
