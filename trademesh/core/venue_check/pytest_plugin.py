"""A pytest plug-in: the venue contract's checks as tests, for any repository that ships a venue.

    pytest -p trademesh.core.venue_check.pytest_plugin --venue-address HOST:PORT [--venue-symbol SYMBOL]

adds one test per check, `venue-check[<check name>]` (docs/venue-contract.md): it passes, fails
with the check's one-line reason, or is skipped where the venue's Admin capabilities say it does
not offer the behaviour. The tokens come from TRADEMESH_TOKEN and TRADEMESH_TRADE_TOKEN. The
checks run once, in the kit's order, the first time one of them runs (those deselected with -k
are left out); as with the command, the last one drains the venue.

Under pytest-xdist, keep them in one worker (`--dist loadgroup`: they share the group
"venue-check"; or `-n 0`): each worker would run the kit against the venue on its own.

Without --venue-address the plug-in adds nothing: no test, no fixture, no import of gRPC.
It is named with `-p` (or `pytest_plugins` in a conftest), not registered as a pytest11 entry
point: pytest rewrites the asserts of every module of a distribution declaring one, which for
trademesh is all of core, gateway and venues, in every pytest run of the environment (and on
Python 3.11.7 its parses in threads that import at once raced: "AST constructor recursion depth
mismatch").
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from trademesh.core.venue_check.runner import Report

__all__ = ["VenueCheckItem", "pytest_addoption", "pytest_collection_modifyitems"]

_ADDRESS = "venue_address"
_SYMBOL = "venue_symbol"
_report_key = pytest.StashKey["Report | str"]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("venue-check", "the trademesh venue contract's conformance kit")
    group.addoption(
        "--venue-address",
        dest=_ADDRESS,
        default=None,
        metavar="HOST:PORT",
        help="run the venue contract's checks against the venue at HOST:PORT, one test each "
        "(tokens from TRADEMESH_TOKEN and TRADEMESH_TRADE_TOKEN)",
    )
    group.addoption(
        "--venue-symbol",
        dest=_SYMBOL,
        default=None,
        metavar="SYMBOL",
        help="with --venue-address: the instrument the checks trade (default: the first tradable one)",
    )


class VenueCheckFailed(Exception):
    """A check's failure: its one-line reason is the whole report."""


class VenueCheckItem(pytest.Item):
    def __init__(self, *, check: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.check = check

    def runtest(self) -> None:
        from trademesh.core.venue_check.results import CheckOutcome

        report = _report(self.session)
        if isinstance(report, str):
            raise VenueCheckFailed(report)
        result = next((r for r in report.results if r.name == self.check), None)
        if result is None:
            raise VenueCheckFailed(f"the kit did not run {self.check}")
        if result.outcome is CheckOutcome.SKIP:
            pytest.skip(result.reason)
        if result.outcome is CheckOutcome.FAIL:
            raise VenueCheckFailed(result.reason)

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> str:
        if isinstance(excinfo.value, VenueCheckFailed):
            return f"{self.check}: {excinfo.value}"
        return str(super().repr_failure(excinfo))

    def reportinfo(self) -> tuple[str, int | None, str]:
        return "venue-check", None, f"venue-check[{self.check}]"


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(
    session: pytest.Session, config: pytest.Config, items: list[pytest.Item]
) -> None:
    """One item per check, added before -k and -m deselect (tryfirst), when --venue-address is given."""
    if config.getoption(_ADDRESS) is None:
        return
    import trademesh.core.venue_check.checks  # noqa: F401  (registers the checks)
    from trademesh.core.venue_check.registry import CHECKS

    for name in CHECKS:
        node = f"venue-check[{name}]"
        item = VenueCheckItem.from_parent(session, name=node, nodeid=node, check=name)
        if config.pluginmanager.hasplugin("xdist"):  # --dist loadgroup keeps them in one worker
            item.add_marker(pytest.mark.xdist_group("venue-check"))
        items.append(item)


def _report(session: pytest.Session) -> Report | str:
    """The kit's report of the checks still selected, run once; or the line saying why it could not run."""
    if _report_key not in session.stash:
        session.stash[_report_key] = _run(session)
    return session.stash[_report_key]


def _run(session: pytest.Session) -> Report | str:
    import asyncio
    from concurrent.futures import ThreadPoolExecutor

    from trademesh.core.platform.config.env import TOKEN, TRADE_TOKEN
    from trademesh.core.platform.errors import TrademeshError
    from trademesh.core.venue_check.command import kit_options
    from trademesh.core.venue_check.registry import select
    from trademesh.core.venue_check.results import BadTarget
    from trademesh.core.venue_check.runner import run_kit

    config = session.config
    names = [item.check for item in session.items if isinstance(item, VenueCheckItem)]
    try:
        options = kit_options(config.getoption(_ADDRESS), TOKEN, TRADE_TOKEN, config.getoption(_SYMBOL), 10.0)
        checks = select(names)
        # On a thread of its own: the event loop of the session's async tests (pytest-asyncio's,
        # kept between tests) is neither disturbed nor needed.
        with ThreadPoolExecutor(1, thread_name_prefix="venue-check") as pool:
            return pool.submit(asyncio.run, run_kit(options, checks)).result()
    except (BadTarget, TrademeshError) as bad:
        return f"the kit could not run: {bad}"
