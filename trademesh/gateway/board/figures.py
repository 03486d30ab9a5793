"""The key figures of one instance, from two readings of its Prometheus metrics.

A reading keeps only the samples the board needs: the counters that count a service's work (by
service: WORK_COUNTERS), the gRPC servers' handled calls by code, and the bus consumers' lag.
Rates are the counters' increase between two readings over the time between them; a counter
that went down (the process restarted) counts from zero.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from prometheus_client.parser import text_string_to_metric_families

from trademesh.registry.v1 import registry_pb2 as reg
from trademesh.services.v1 import services_pb2 as pb

__all__ = [
    "ERROR_COUNTERS",
    "LAG_GAUGE",
    "VENUE_COUNTERS",
    "WORK_COUNTERS",
    "ScrapeReading",
    "absent",
    "figures",
    "parse_reading",
    "work_counters",
]

# What counts a service's work, by service name (a venue's by kind): each a counter family
# (its samples summed). docs/operations.md, "The services board", lists them.
WORK_COUNTERS: dict[str, tuple[str, ...]] = {
    "ingest": ("trademesh_ingest_published_total",),
    "recorder": ("trademesh_recorder_rows_staged_total", "trademesh_recorder_rows_copied_direct_total"),
    "bars": ("trademesh_bars_trades_total",),
    "bridge": ("trademesh_bridge_events_total",),
    "detector": ("trademesh_detector_evaluations_total",),
    "advisor": ("trademesh_advisor_decisions_total",),
    "inspector": ("trademesh_inspector_verdicts_total",),
    "ledger": ("trademesh_ledger_events_posted_total",),
    "overwatch": ("trademesh_overwatch_bars_total",),
    "screener": ("trademesh_screener_evaluations_total",),
    "gateway": ("gateway_grpcweb_messages_sent_total",),
}
VENUE_COUNTERS = ("trademesh_venue_events_total",)
# Calls answered with a code other than OK: native gRPC (every server), gRPC-web (the gateway).
ERROR_COUNTERS = ("grpc_server_handled_total", "gateway_grpcweb_calls_total")
LAG_GAUGE = "trademesh_bus_lag"
_OK = "OK"


@dataclass(frozen=True)
class ScrapeReading:
    """What one scrape said: each counter's total (None: not exported), the errors, the lag."""

    at_s: float
    work: dict[str, float] = field(default_factory=dict)
    errors: float | None = None
    lag: float | None = None


def work_counters(name: str, kind: int) -> tuple[str, ...]:
    if kind == reg.KIND_VENUE:
        return VENUE_COUNTERS
    return WORK_COUNTERS.get(name, ())


def parse_reading(text: str, at_s: float, counters: Iterable[str]) -> ScrapeReading:
    """The samples of `text` (Prometheus text format) the board uses; ValueError when it is not
    that format."""
    wanted = set(counters)
    work: dict[str, float] = {}
    errors: float | None = None
    lags: list[float] = []
    for family in text_string_to_metric_families(_only(text, {*wanted, *ERROR_COUNTERS, LAG_GAUGE})):
        # A labelled counter exports its family before its first sample: it counts, from zero.
        # The parser names a counter's family without its _total; its samples keep it.
        total = f"{family.name}_total"
        if total in wanted:
            work.setdefault(total, 0.0)
        elif total in ERROR_COUNTERS and errors is None:
            errors = 0.0
        for sample in family.samples:
            if sample.name in wanted:
                work[sample.name] = work.get(sample.name, 0.0) + sample.value
            elif sample.name in ERROR_COUNTERS:
                failed = sample.labels.get("grpc_code", _OK) != _OK
                errors = (errors or 0.0) + (sample.value if failed else 0.0)
            elif sample.name == LAG_GAUGE and not math.isnan(sample.value):
                lags.append(sample.value)
    return ScrapeReading(at_s, work, errors, max(lags) if lags else None)


def _only(text: str, names: set[str]) -> str:
    """The lines of `text` about the families `names` (their HELP, TYPE and samples): a venue's
    scrape is ~600 lines, of which the board reads a few, and parsing all took ~9 ms."""
    families = {name.removesuffix("_total") for name in names}
    kept = []
    typed = False
    for line in text.splitlines():
        if line.startswith("#"):
            parts = line.split(" ", 3)
            typed = typed or parts[1:2] == ["TYPE"]
            keep = len(parts) > 2 and (parts[2] in families or parts[2] in names)
        else:
            name = line.split("{", 1)[0].split(" ", 1)[0]
            keep = name in names or name in families
        if keep:
            kept.append(line)
    if not typed:
        raise ValueError("no `# TYPE` line: not Prometheus text format")
    return "\n".join(kept) + "\n"


def absent(why: str) -> pb.Figure:
    return pb.Figure(present=False, why=why)


def _present(value: float) -> pb.Figure:
    return pb.Figure(present=True, value=value)


def figures(
    before: ScrapeReading | None, now: ScrapeReading, counters: tuple[str, ...]
) -> tuple[pb.Figure, pb.Figure, pb.Figure]:
    """(events/s, bus lag, errors/s) of an instance from its last two readings."""
    if not counters:
        events = absent("no work counter known for this service")
    elif not any(name in now.work for name in counters):
        events = absent(f"not exported by this service ({', '.join(counters)})")
    else:
        events = _rate(before, now, sum(now.work.values()), _work_total)
    lag = absent("not a bus consumer (no trademesh_bus_lag)") if now.lag is None else _present(now.lag)
    if now.errors is None:
        errors = absent("no gRPC server metrics")
    else:
        errors = _rate(before, now, now.errors, lambda r: r.errors)
    return events, lag, errors


def _work_total(reading: ScrapeReading) -> float | None:
    return sum(reading.work.values()) if reading.work else None


def _rate(
    before: ScrapeReading | None,
    now: ScrapeReading,
    total: float,
    of: Callable[[ScrapeReading], float | None],
) -> pb.Figure:
    if before is None or now.at_s <= before.at_s:
        return absent("first reading (a rate needs two)")
    previous = of(before) or 0.0  # not exported before: it appeared since, from zero
    increase = total - previous if total >= previous else total  # a restart counts from zero
    return _present(increase / (now.at_s - before.at_s))
