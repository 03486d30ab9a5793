"""The bus consumer's wait after a read short of a batch (`linger_wait`)."""

from __future__ import annotations

import pytest

from trademesh.core.platform.bus.consumer import linger_wait


@pytest.mark.parametrize(
    ("handled_s", "wait_s"),
    [
        (0.0, 0.010),  # nothing to do: the whole linger
        (0.002, 0.008),  # the rest of the linger: the next read 10 ms after this one came back
        (0.005, 0.005),  # half the linger handling, half waiting
        (0.007, 0.007),  # past half: as long as the handling took
        (0.010, 0.010),
        (0.017, 0.010),  # longer than the linger: a whole linger, never more
    ],
)
def test_the_wait_is_the_rest_of_the_linger_or_as_long_as_the_handling(
    handled_s: float, wait_s: float
) -> None:
    assert linger_wait(0.010, handled_s) == pytest.approx(wait_s)


def test_reads_come_at_least_a_linger_apart_and_spend_at_most_half_their_time_handling() -> None:
    for handled_ms in range(0, 40):
        handled = handled_ms / 1000
        wait = linger_wait(0.010, handled)
        assert handled + wait >= 0.010 - 1e-12
        assert wait >= min(handled, 0.010) and wait <= 0.010
