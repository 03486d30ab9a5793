"""The venue as a gRPC service: health, reflection, Admin GetStatus and its instruments."""

from __future__ import annotations

import re
import time
from collections.abc import AsyncIterator

import grpc
from google.protobuf import descriptor_pb2
from grpc_health.v1 import health_pb2
from grpc_reflection.v1alpha import reflection_pb2

from trademesh.admin.v1 import admin_pb2 as admin
from trademesh.common.v1 import common_pb2 as common
from trademesh.core.venue_check.kit import Kit
from trademesh.core.venue_check.market import decimal_of
from trademesh.core.venue_check.registry import check
from trademesh.core.venue_check.results import fail
from trademesh.core.venue_check.wire import answer, describe, field_violations, refusal
from trademesh.marketdata.v1 import marketdata_pb2 as md
from trademesh.tradeflow.v1 import tradeflow_pb2 as tf

# The contract's services, as the generated descriptors (the .proto files) state them.
SERVICES = [
    md.DESCRIPTOR.services_by_name["MarketData"],
    tf.DESCRIPTOR.services_by_name["TradeFlow"],
    admin.DESCRIPTOR.services_by_name["Admin"],
]
_REFLECTION = ("grpc.reflection.v1alpha.ServerReflection", "grpc.reflection.v1.ServerReflection")
# A canonical (ccxt unified) symbol: BASE/QUOTE, then :SETTLE for a contract, then -EXPIRY, -STRIKE
# and -C/-P for a future or an option.
# A part is a currency code as ccxt writes it (letters, digits, a dot or an underscore: "1000SHIB").
_CANONICAL = re.compile(
    r"(?P<base>[\w.]+)/(?P<quote>[\w.]+)(:(?P<settle>[\w.]+)(?P<rest>(-[\w.]+)*))?", re.ASCII
)
_UNKNOWN = "VENUECHECK/NOSUCH"
_SHOWN = 3  # problems named in a reason


@check("health", "grpc.health.v1 answers SERVING for the whole server, without a token")
async def health(kit: Kit) -> str:
    answered = await answer("Health/Check", kit.open.health.Check(health_pb2.HealthCheckRequest(service="")))
    if answered.status != health_pb2.HealthCheckResponse.SERVING:
        fail(
            "Health/Check of the server answered "
            f"{health_pb2.HealthCheckResponse.ServingStatus.Name(answered.status)}"
        )
    return "Health/Check answers SERVING without a token"


async def _reflect(
    channel: grpc.aio.Channel, method: str, requests: list[reflection_pb2.ServerReflectionRequest]
) -> list[reflection_pb2.ServerReflectionResponse]:
    call = channel.stream_stream(
        f"/{method}/ServerReflectionInfo",
        request_serializer=reflection_pb2.ServerReflectionRequest.SerializeToString,
        response_deserializer=reflection_pb2.ServerReflectionResponse.FromString,
    )

    async def sent() -> AsyncIterator[reflection_pb2.ServerReflectionRequest]:
        for request in requests:
            yield request

    return [response async for response in call(sent())]


async def _reflection(
    kit: Kit, requests: list[reflection_pb2.ServerReflectionRequest]
) -> list[reflection_pb2.ServerReflectionResponse]:
    """The answers of the v1alpha reflection service, else of v1 (a venue serves one or both)."""
    refused = []
    for method in _REFLECTION:
        try:
            return await _reflect(kit.open.channel, method, requests)
        except grpc.aio.AioRpcError as exc:
            refused.append(f"{method.rsplit('.', 2)[-2]} {describe(exc)}")
    fail(f"no server reflection without a token: {'; '.join(refused)}")


def _served_methods(
    response: reflection_pb2.ServerReflectionResponse, service: str
) -> dict[str, tuple[str, str]]:
    """The methods (input and output types) of `service` in the files a reflection answer holds."""
    for blob in response.file_descriptor_response.file_descriptor_proto:
        file = descriptor_pb2.FileDescriptorProto.FromString(blob)
        for item in file.service:
            if f"{file.package}.{item.name}" == service:
                return {m.name: (m.input_type.lstrip("."), m.output_type.lstrip(".")) for m in item.method}
    return {}


@check(
    "reflection",
    "server reflection, without a token, lists the three venue services with every method of the contract",
)
async def reflection(kit: Kit) -> str:
    names = [s.full_name for s in SERVICES]
    requests = [reflection_pb2.ServerReflectionRequest(list_services="")]
    requests += [reflection_pb2.ServerReflectionRequest(file_containing_symbol=n) for n in names]
    responses = await _reflection(kit, requests)
    if len(responses) != len(requests):
        fail(f"server reflection answered {len(responses)} of {len(requests)} requests")
    listed = {s.name for s in responses[0].list_services_response.service}
    missing = [n for n in names if n not in listed]
    if missing:
        fail(f"server reflection does not list {', '.join(missing)}")
    for service, response in zip(SERVICES, responses[1:], strict=True):
        served = _served_methods(response, service.full_name)
        expected = {m.name: (m.input_type.full_name, m.output_type.full_name) for m in service.methods}
        wrong = [name for name, types in expected.items() if served.get(name) != types]
        if wrong:
            fail(f"server reflection's {service.full_name} lacks or differs in {', '.join(wrong)}")
    return f"reflection lists {', '.join(n.rsplit('.', 1)[-1] for n in names)} with the contract's methods"


@check(
    "status",
    "Admin GetStatus names the venue and its exchange, a running state, its streams and its capabilities",
)
async def status(kit: Kit) -> str:
    answered = await answer("Admin/GetStatus", kit.mesh.admin.GetStatus(admin.GetStatusRequest()))
    problems = []
    if not answered.venue or not answered.exchange:
        problems.append(f"venue {answered.venue!r} and exchange {answered.exchange!r} must both be named")
    if answered.state not in (admin.VENUE_STATE_RUNNING, admin.VENUE_STATE_DEGRADED):
        problems.append(f"state {admin.VenueState.Name(answered.state)}, not RUNNING or DEGRADED")
    if not 0 < answered.started_ns <= time.time_ns():
        problems.append(f"started_ns {answered.started_ns} is not a past time")
    listed = {i.symbol for i in kit.instruments}
    for stream in answered.streams:
        if stream.symbol not in listed or stream.channel == md.CHANNEL_UNSPECIFIED:
            problems.append(
                f"a stream of {stream.symbol!r} on {md.Channel.Name(stream.channel)}, not a listed "
                "instrument and channel"
            )
        if stream.state == admin.STREAM_STATE_UNSPECIFIED:
            problems.append(f"the stream {stream.symbol} {md.Channel.Name(stream.channel)} has no state")
    capabilities = answered.capabilities
    if capabilities.account_feed == admin.ACCOUNT_FEED_POLL and capabilities.account_poll_interval_ms == 0:
        problems.append("an account polled (ACCOUNT_FEED_POLL) with no account_poll_interval_ms")
    if not answered.dead_man.keeps_reduce_only:
        problems.append(
            "dead_man.keeps_reduce_only is false: a trip must keep a position's reduce-only orders"
        )
    if problems:
        fail(f"GetStatus: {'; '.join(problems[:_SHOWN])}")
    state = admin.VenueState.Name(answered.state).removeprefix("VENUE_STATE_")
    return f"venue {answered.venue} ({answered.exchange}) {state}, {len(answered.streams)} streams"


def _instrument_problems(instrument: common.Instrument, venue: str) -> list[str]:
    symbol = instrument.symbol
    found = []
    match = _CANONICAL.fullmatch(symbol)
    if match is None:
        return [f"{symbol!r} is not a canonical symbol (BASE/QUOTE[:SETTLE[-...]])"]
    if (match["base"], match["quote"]) != (instrument.base_asset, instrument.quote_asset):
        found.append(
            f"{symbol}: base/quote {instrument.base_asset}/{instrument.quote_asset} differ from the symbol's"
        )
    spot = instrument.kind == common.INSTRUMENT_KIND_SPOT
    if instrument.kind == common.INSTRUMENT_KIND_UNSPECIFIED:
        found.append(f"{symbol}: no kind")
    elif spot != (match["settle"] is None):
        found.append(f"{symbol}: kind {common.InstrumentKind.Name(instrument.kind)} does not fit its symbol")
    settle = match["settle"] or instrument.quote_asset
    if instrument.settle_asset != settle:
        found.append(f"{symbol}: settle_asset {instrument.settle_asset!r}, the symbol says {settle}")
    if instrument.venue != venue:
        found.append(f"{symbol}: venue {instrument.venue!r}, GetStatus says {venue!r}")
    if not instrument.native_symbol:
        found.append(f"{symbol}: no native_symbol")
    for name in ("tick_size", "lot_size"):
        value = decimal_of(getattr(instrument, name))
        if value is None or value <= 0:
            found.append(f"{symbol}: {name} {getattr(instrument, name)!r} is not a positive decimal")
    for name in ("min_size", "min_notional"):
        value = decimal_of(getattr(instrument, name))
        if value is None or value < 0:
            found.append(f"{symbol}: {name} {getattr(instrument, name)!r} is not a decimal of 0 or more")
    found += _contract_value_problems(instrument, spot)
    return found


def _contract_value_problems(instrument: common.Instrument, spot: bool) -> list[str]:
    symbol, text, asset = instrument.symbol, instrument.contract_value, instrument.contract_value_asset
    value = decimal_of(text)
    if value is None or value <= 0:
        return [f"{symbol}: contract_value {text!r} is not a positive decimal"]
    if asset not in (instrument.base_asset, instrument.quote_asset):
        return [f"{symbol}: contract_value_asset {asset!r} is neither its base nor its quote asset"]
    if spot and (value != 1 or asset != instrument.base_asset):
        return [f"{symbol}: a spot pair's contract value is 1 of its base, not {text} {asset}"]
    inverse = decimal_of(instrument.contract_size) == 0
    if inverse and asset != instrument.quote_asset:
        return [f"{symbol}: an inverse contract (contract_size 0) is valued in its quote asset, not {asset}"]
    return []


@check(
    "instruments",
    (
        "ListInstruments: canonical symbols with kind, tick, lot, minimums and contract "
        "value; a filter; an unknown symbol refused"
    ),
)
async def instruments(kit: Kit) -> str:
    listed = (
        await answer("ListInstruments", kit.mesh.md.ListInstruments(md.ListInstrumentsRequest()))
    ).instruments
    if not listed:
        fail("ListInstruments lists no instrument")
    symbols = [i.symbol for i in listed]
    if len(set(symbols)) != len(symbols):
        fail("ListInstruments lists a symbol more than once")
    problems = [p for i in listed for p in _instrument_problems(i, kit.venue)]
    if problems:
        more = f" (and {len(problems) - _SHOWN} more)" if len(problems) > _SHOWN else ""
        fail("; ".join(problems[:_SHOWN]) + more)
    one = kit.symbol
    filtered = await answer(
        f"ListInstruments of {one}", kit.mesh.md.ListInstruments(md.ListInstrumentsRequest(symbols=[one]))
    )
    if [i.symbol for i in filtered.instruments] != [one]:
        fail(f"ListInstruments of [{one}] answered {[i.symbol for i in filtered.instruments]}")
    error = await refusal(
        f"ListInstruments of {_UNKNOWN}",
        kit.mesh.md.ListInstruments(md.ListInstrumentsRequest(symbols=[_UNKNOWN])),
        grpc.StatusCode.INVALID_ARGUMENT,
    )
    if not any(field.startswith("symbols") for field, _ in field_violations(error)):
        fail(f"ListInstruments of {_UNKNOWN} was refused without a field violation on symbols")
    return (
        f"{len(listed)} instruments, each well formed; the filter and an unknown symbol "
        "answered as the contract says"
    )
