"""The shipped policy set (`default_policies.toml`), and an operator's policy file read over it:
a limit the file leaves out keeps its shipped value; only `remove = [...]` turns one off
(docs/inspector.md, "The policies file"). The live shell and the backtest read policies here, and
journal the complete set that results (trademesh.core.inspector.engine.policy_dump)."""

from __future__ import annotations

import functools

from trademesh.core.inspector.config import DEFAULT_POLICIES
from trademesh.core.inspector.engine.policies import PolicySet
from trademesh.core.inspector.engine.policy_dump import dump_policies
from trademesh.core.inspector.engine.policy_file import PolicyUpdate, load_policies, read_policies

__all__ = ["journal_policies", "operator_policies", "shipped_policies"]


@functools.cache
def shipped_policies() -> PolicySet:
    return load_policies(DEFAULT_POLICIES.read_text())


def operator_policies(text: str, source: str | None = None) -> PolicyUpdate:
    """An operator's policy file (InvalidArgument naming every bad key, and `source`: the file)."""
    return read_policies(text, shipped_policies(), source)


def journal_policies(text: str, source: str | None = None) -> str:
    """The complete set an operator's policy file makes, as the journal holds it."""
    return dump_policies(operator_policies(text, source).policies)
