"""TRADEMESH_DRAIN_DELAY_S: how long a stopping service says NOT_SERVING before it stops."""

from __future__ import annotations

import pytest

from trademesh.core.platform.config.env import DRAIN_DELAY_S, drain_delay_s
from trademesh.core.platform.errors import InvalidArgument


@pytest.mark.parametrize(("text", "seconds"), [("", 0.5), ("0", 0.0), (" 0.25 ", 0.25), ("60", 60.0)])
def test_a_number_of_seconds_in_range_is_taken_and_unset_is_half_a_second(
    monkeypatch: pytest.MonkeyPatch, text: str, seconds: float
) -> None:
    monkeypatch.setenv(DRAIN_DELAY_S, text)
    assert drain_delay_s() == seconds


@pytest.mark.parametrize("text", ["-1", "61", "soon", "nan", "inf"])
def test_anything_else_is_an_error_naming_the_variable_and_the_value(
    monkeypatch: pytest.MonkeyPatch, text: str
) -> None:
    monkeypatch.setenv(DRAIN_DELAY_S, text)
    with pytest.raises(InvalidArgument, match=f"{DRAIN_DELAY_S}: '{text}' is not a number"):
        drain_delay_s()
