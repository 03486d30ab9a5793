"""Failed logins per client address: past `max_failures` in `window_s`, logins from that
address are refused (even with a right key) until the oldest failure leaves the window.

Memory is bounded: at most `max_clients` addresses are tracked, the least recently seen
forgotten first.
"""

from __future__ import annotations

import math
from collections import OrderedDict, deque

__all__ = ["LoginThrottle"]


class LoginThrottle:
    def __init__(self, max_failures: int = 10, window_s: float = 60.0, max_clients: int = 10_000) -> None:
        self._max_failures = max_failures
        self._window_s = window_s
        self._max_clients = max_clients
        self._failures: OrderedDict[str, deque[float]] = OrderedDict()

    def retry_after_s(self, client: str, now: float) -> int | None:
        """Whole seconds until `client` may try again, or None when it may now."""
        failures = self._recent(client, now)
        if len(failures) < self._max_failures:
            return None
        return max(1, math.ceil(failures[0] + self._window_s - now))

    def failed(self, client: str, now: float) -> None:
        failures = self._recent(client, now)
        failures.append(now)
        self._failures[client] = failures
        self._failures.move_to_end(client)
        while len(self._failures) > self._max_clients:
            self._failures.popitem(last=False)

    def succeeded(self, client: str) -> None:
        self._failures.pop(client, None)

    def _recent(self, client: str, now: float) -> deque[float]:
        """`client`'s failures still in the window (a new deque, not yet tracked, if none)."""
        failures = self._failures.get(client, deque())
        while failures and failures[0] <= now - self._window_s:
            failures.popleft()
        return failures
