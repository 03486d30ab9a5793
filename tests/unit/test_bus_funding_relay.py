"""The funding relay without a network: what each poll puts on the bus, whoever polls (ingest over
gRPC, a venue in process)."""

from __future__ import annotations

from trademesh.core.platform.bus.codec import decode
from trademesh.core.platform.bus.funding import PAGE, FundingRelay
from trademesh.tradeflow.v1 import tradeflow_pb2 as tf

T = 1_700_000_000_000_000_000


class Venue:
    """A venue's funding history, answering pages as ListFundingPayments does (since inclusive)."""

    def __init__(self, payments: list[tf.FundingPayment]) -> None:
        self.payments = payments
        self.asked: list[int] = []

    async def page(self, since_ns: int, limit: int) -> list[tf.FundingPayment]:
        self.asked.append(since_ns)
        return [p for p in self.payments if p.ts_ns >= since_ns][:limit]


def _payment(n: int, ts_ns: int) -> tf.FundingPayment:
    return tf.FundingPayment(funding_id=f"f{n}", symbol="BTC/USDT:USDT", ts_ns=ts_ns, amount="-1")


async def test_each_payment_goes_to_the_bus_once_across_polls_and_the_same_funding_time() -> None:
    entries: list[tuple[str, bytes]] = []

    async def publish(stream: str, envelope: bytes) -> None:
        entries.append((stream, envelope))

    relay = FundingRelay("sim", publish, "venue/test", 60.0)
    venue = Venue([_payment(1, T), _payment(2, T)])
    assert await relay.poll_with(venue.page) == 2
    venue.payments.append(_payment(3, T))  # another payment at the same funding time
    assert await relay.poll_with(venue.page) == 1
    assert await relay.poll_with(venue.page) == 0
    ids = [[p.funding_id for p in decode({b"d": e}).funding.payments] for _, e in entries]
    assert ids == [["f1", "f2"], ["f3"]]
    assert {stream for stream, _ in entries} == {"funding.{sim}"}
    assert venue.asked == [0, T, T], "asked again from the last funding time, inclusive"


async def test_a_full_page_is_followed_by_the_next_in_the_same_poll_and_a_bus_loss_asks_again() -> None:
    published: list[bytes] = []

    async def publish(stream: str, envelope: bytes) -> None:
        published.append(envelope)

    relay = FundingRelay("sim", publish, "venue/test", 60.0)
    venue = Venue([_payment(n, T + n) for n in range(PAGE + 5)])
    assert await relay.poll_with(venue.page) == PAGE + 5
    assert len(published) == 2
    relay.mark_bus_loss(T)
    assert await relay.poll_with(venue.page) == PAGE + 5, "what the bus lost is published again"
