"""Subscribe's resume points: a point the venue still holds is resumed with nothing lost or
repeated; one it cannot resume starts a new stream with a GAP notice per stream."""

from __future__ import annotations

from trademesh.core.venue_check.kit import Kit
from trademesh.core.venue_check.market import PAYLOADS, MarketObservation, read_stream
from trademesh.core.venue_check.registry import check
from trademesh.core.venue_check.results import fail
from trademesh.marketdata.v1 import marketdata_pb2 as md

# A position no venue reaches in a run: beyond what the venue has sent.
_FAR_AHEAD = 10**15


def _resumed(observation: MarketObservation, epoch: int, position: int) -> md.SubscribeRequest:
    request = md.SubscribeRequest()
    request.CopyFrom(observation.request)
    request.resume.epoch = epoch
    request.resume.position = position
    return request


def _numbered(observation: MarketObservation) -> list[md.SubscribeResponse]:
    return [m for m in observation.messages if m.position > 0 and m.epoch > 0]


@check(
    "subscribe.resume",
    (
        "Subscribe resumed from a position it sent: first what followed it, event for "
        "event, nothing lost or repeated"
    ),
)
async def subscribe_resume(kit: Kit) -> str:
    observation = await kit.observation()
    numbered = _numbered(observation)
    if not numbered:
        fail(
            f"the subscription of {kit.symbol} sent no message with a position to resume from "
            f"in {observation.read_s:.1f} s"
        )
    point = numbered[(len(numbered) - 1) // 2]
    index = observation.messages.index(point)
    after = [e.SerializeToString() for m in observation.messages[index + 1 :] for e in m.events]
    got: list[bytes] = []

    def enough(message: md.SubscribeResponse) -> bool:
        got.extend(e.SerializeToString() for e in message.events)
        return len(got) >= len(after)

    request = _resumed(observation, point.epoch, point.position)
    messages, ended = await read_stream(kit, request, enough, window_s=5.0)
    if got[: len(after)] != after:
        first = next(
            (i for i, (a, b) in enumerate(zip(got, after, strict=False)) if a != b), min(len(got), len(after))
        )
        events = [e for m in messages for e in m.events]
        if (
            first < len(events)
            and events[first].HasField("notice")
            and events[first].notice.kind == md.NOTICE_KIND_GAP
        ):
            fail(
                f"resuming from position {point.position}, sent moments before, gave a GAP notice "
                f"({events[first].notice.reason})"
            )
        fail(
            f"resumed from position {point.position}: {len(after)} events had followed it, the "
            "resumed stream "
            f"differs from event {first + 1} on ({len(got)} events read{', ' + ended if ended else ''})"
        )
    if ended:
        fail(f"the stream resumed from position {point.position}: {ended}")
    early = [m.position for m in messages if m.position and m.position <= point.position]
    if early:
        fail(f"resumed from position {point.position}, the stream sent position {early[0]} again")
    return f"resumed from position {point.position}: the {len(after)} events that had followed it, in order"


def _gap_channels(messages: list[md.SubscribeResponse], symbol: str) -> tuple[set[int], set[int]]:
    """The channels of `symbol` with a GAP notice, and those whose events came before their notice."""
    noticed: set[int] = set()
    early: set[int] = set()
    kinds = {kind: channel for channel, kinds in PAYLOADS.items() for kind in kinds}
    for event in (e for m in messages for e in m.events if e.symbol == symbol):
        if event.HasField("notice"):
            if event.notice.kind == md.NOTICE_KIND_GAP:
                noticed.add(event.notice.channel)
            continue
        channel = kinds.get(str(event.WhichOneof("payload")))
        if channel is not None and channel not in noticed:
            early.add(channel)
    return noticed, early


async def _expect_gaps(
    kit: Kit, observation: MarketObservation, epoch: int, position: int, what: str
) -> None:
    asked = set(observation.request.channels)
    collected: list[md.SubscribeResponse] = []

    def noticed_all(message: md.SubscribeResponse) -> bool:
        collected.append(message)
        return asked <= _gap_channels(collected, kit.symbol)[0]

    messages, ended = await read_stream(
        kit, _resumed(observation, epoch, position), noticed_all, window_s=5.0
    )
    noticed, early = _gap_channels(messages, kit.symbol)
    missing = sorted(asked - noticed)
    if missing:
        names = ", ".join(md.Channel.Name(c) for c in missing)
        fail(f"resuming from {what}: no GAP notice on {names}" + (f" ({ended})" if ended else ""))
    if early:
        names = ", ".join(md.Channel.Name(c) for c in sorted(early))  # type: ignore[arg-type]
        fail(f"resuming from {what}: events of {names} came before the GAP notice")
    if ended:
        fail(f"resuming from {what}: {ended} (the stream starts as a new one)")


@check(
    "subscribe.lost_resume",
    (
        "Subscribe resumed from a point the venue cannot resume (another epoch, a "
        "position not reached) starts anew with a GAP notice per stream first"
    ),
)
async def subscribe_lost_resume(kit: Kit) -> str:
    observation = await kit.observation()
    numbered = _numbered(observation)
    epoch = numbered[-1].epoch if numbered else 0
    other = epoch + 1 if epoch else 1
    await _expect_gaps(kit, observation, other, 1, f"position 1 of another epoch ({other})")
    if numbered:
        await _expect_gaps(
            kit, observation, epoch, _FAR_AHEAD, f"position {_FAR_AHEAD}, not reached, of its epoch"
        )
    return "a GAP notice on every stream first, for another epoch and for a position not reached"
