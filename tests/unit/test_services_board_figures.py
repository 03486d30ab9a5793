"""The services board's figures from two readings of an instance's metrics (rates, the counters
counted per service, absent figures), Alertmanager's alerts attached to the instances they
name, and the board's checks: version, Watch's interval, --alertmanager-url."""

from __future__ import annotations

import argparse
import re
from datetime import UTC, datetime

import pytest
from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest

from trademesh.core.platform.config.env import ALERTMANAGER_URL
from trademesh.core.platform.errors import InvalidArgument
from trademesh.core.platform.rpc.registration import Registration, package_version
from trademesh.gateway.board.alerts import attach, parse_alerts
from trademesh.gateway.board.command import add_board_arguments, alertmanager_url, board_options
from trademesh.gateway.board.figures import ScrapeReading, figures, parse_reading, work_counters
from trademesh.gateway.board.servicer import watch_interval_ms
from trademesh.gateway.registry.state import Entry, RegistryState
from trademesh.gateway.registry.validate import check_register
from trademesh.registry.v1 import registry_pb2 as reg
from trademesh.services.v1 import services_pb2 as pb

GRPC_LABELS = ("grpc_type", "grpc_service", "grpc_method", "grpc_code")


class Exporter:
    """A process's metrics as prometheus_client writes them (the same library the services use)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.handled = Counter("grpc_server_handled_total", "", GRPC_LABELS, registry=self.registry)
        self.lag = Gauge("trademesh_bus_lag", "", ["stream", "group"], registry=self.registry)

    def counter(self, name: str, labels: tuple[str, ...] = ()) -> Counter:
        return Counter(name, "", labels, registry=self.registry)

    def text(self) -> str:
        return generate_latest(self.registry).decode()

    def read(self, name: str, kind: int, at_s: float) -> ScrapeReading:
        return parse_reading(self.text(), at_s, work_counters(name, kind))


def test_a_venues_events_per_second_is_its_events_counters_increase_over_the_time_between_reads() -> None:
    exporter = Exporter()
    events = exporter.counter("trademesh_venue_events_total", ("symbol",))
    events.labels("BTC/USDT").inc(100)
    first = exporter.read("sim", reg.KIND_VENUE, 10.0)
    events.labels("BTC/USDT").inc(30)
    events.labels("ETH/USDT").inc(10)  # every sample of the family counts
    second = exporter.read("sim", reg.KIND_VENUE, 12.0)
    rate, _, _ = figures(first, second, work_counters("sim", reg.KIND_VENUE))
    assert rate == pb.Figure(present=True, value=20.0)


def test_the_recorders_work_is_its_staged_and_direct_rows_summed() -> None:
    exporter = Exporter()
    staged = exporter.counter("trademesh_recorder_rows_staged_total", ("table",))
    direct = exporter.counter("trademesh_recorder_rows_copied_direct_total", ("table",))
    first = exporter.read("recorder", reg.KIND_CORE, 0.0)
    staged.labels("bars").inc(4)
    direct.labels("market_events").inc(16)
    second = exporter.read("recorder", reg.KIND_CORE, 4.0)
    assert figures(first, second, work_counters("recorder", reg.KIND_CORE))[0].value == 5.0


def test_each_service_counts_its_own_work_and_a_venue_counts_by_kind_whatever_its_name() -> None:
    assert work_counters("binance", reg.KIND_VENUE) == ("trademesh_venue_events_total",)
    assert work_counters("ingest", reg.KIND_CORE) == ("trademesh_ingest_published_total",)
    assert work_counters("bars", reg.KIND_CORE) == ("trademesh_bars_trades_total",)
    assert work_counters("overwatch", reg.KIND_CORE) == ("trademesh_overwatch_bars_total",)
    assert work_counters("gateway", reg.KIND_GATEWAY) == ("gateway_grpcweb_messages_sent_total",)
    assert work_counters("something-new", reg.KIND_CORE) == ()


def test_overwatchs_work_is_its_bars_classified_warm_and_live_together() -> None:
    exporter = Exporter()
    classified = exporter.counter("trademesh_overwatch_bars_total", ("timeframe", "warm"))
    classified.labels("1m", "false")  # at 0 from the start, as the service makes it
    first = exporter.read("overwatch", reg.KIND_CORE, 0.0)
    classified.labels("1m", "true").inc(150)
    classified.labels("1m", "false").inc(10)
    second = exporter.read("overwatch", reg.KIND_CORE, 10.0)
    assert figures(first, second, work_counters("overwatch", reg.KIND_CORE))[0].value == 16.0


def test_errors_per_second_count_only_calls_answered_with_a_code_other_than_ok() -> None:
    exporter = Exporter()
    first = exporter.read("bridge", reg.KIND_CORE, 0.0)
    exporter.handled.labels("unary", "s", "M", "OK").inc(1000)
    exporter.handled.labels("unary", "s", "M", "INVALID_ARGUMENT").inc(3)
    exporter.handled.labels("server_stream", "s", "S", "UNAVAILABLE").inc(1)
    second = exporter.read("bridge", reg.KIND_CORE, 2.0)
    _, _, errors = figures(first, second, work_counters("bridge", reg.KIND_CORE))
    assert errors == pb.Figure(present=True, value=2.0)


def test_the_bus_lag_is_the_largest_of_its_consumer_groups() -> None:
    exporter = Exporter()
    exporter.lag.labels("market.sim", "bars").set(3)
    exporter.lag.labels("market.binance", "bars").set(41)
    reading = exporter.read("bars", reg.KIND_CORE, 1.0)
    lag = figures(None, reading, work_counters("bars", reg.KIND_CORE))[1]
    assert lag == pb.Figure(present=True, value=41)


def test_figures_that_cannot_be_read_are_absent_with_why_never_zero() -> None:
    exporter = Exporter()
    reading = exporter.read("ingest", reg.KIND_CORE, 1.0)  # no ingest counter, no lag yet
    events, lag, errors = figures(None, reading, work_counters("ingest", reg.KIND_CORE))
    assert not events.present and "not exported" in events.why and events.value == 0
    assert not lag.present and "not a bus consumer" in lag.why
    assert not errors.present and errors.why == "first reading (a rate needs two)"
    unknown, _, _ = figures(None, reading, work_counters("something-new", reg.KIND_CORE))
    assert not unknown.present and unknown.why == "no work counter known for this service"
    bare = parse_reading("# TYPE up gauge\nup 1\n", 1.0, ())
    assert not figures(bare, bare, ())[2].present  # no gRPC server metrics at all


def test_a_counter_that_went_down_counts_from_zero_the_process_restarted() -> None:
    counters = ("trademesh_bridge_events_total",)
    before = ScrapeReading(0.0, {"trademesh_bridge_events_total": 5000.0}, 0.0)
    after = ScrapeReading(2.0, {"trademesh_bridge_events_total": 60.0}, 0.0)
    assert figures(before, after, counters)[0].value == 30.0


def test_text_that_is_not_prometheus_format_is_an_error_not_figures() -> None:
    with pytest.raises(ValueError):
        parse_reading("this is { not metrics\n", 0.0, ())


def _alert(labels: dict[str, str], **notes: str) -> dict[str, object]:
    return {
        "labels": labels,
        "annotations": notes,
        "startsAt": "2026-11-26T23:30:00.123456789Z",
        "status": {"state": "active"},
    }


def test_alerts_attach_to_the_instance_named_by_id_service_or_venue_and_the_rest_are_mesh_wide() -> None:
    state = RegistryState(ttl_s=10.0)
    sim = state.register("sim", reg.KIND_VENUE, "h:5070", [])
    bridge_a = state.register("bridge", reg.KIND_CORE, "h:5201", [])
    bridge_b = state.register("bridge", reg.KIND_CORE, "h:5202", [])
    alerts = parse_alerts(
        [
            _alert({"alertname": "BridgeSlow", "instance_id": bridge_b.instance_id}, summary="slow"),
            _alert({"alertname": "BridgeDown", "service": "bridge", "severity": "page"}),
            _alert({"alertname": "VenueStale", "venue": "sim"}, description="no events"),
            _alert({"alertname": "Gone", "instance_id": "0" * 32}),
            _alert({"alertname": "BusDown"}),
        ]
    )
    by_id, mesh = attach(alerts, state.instances())
    names = {key: [a.name for a in found] for key, found in by_id.items()}
    assert names == {
        sim.instance_id: ["VenueStale"],
        bridge_a.instance_id: ["BridgeDown"],
        bridge_b.instance_id: ["BridgeSlow", "BridgeDown"],
    }
    assert [a.name for a in mesh] == ["Gone", "BusDown"]
    assert alerts[0].summary == "slow" and alerts[1].severity == "page" and alerts[2].summary == "no events"
    starts = datetime(2026, 11, 26, 23, 30, tzinfo=UTC).timestamp()
    assert alerts[0].starts_at_ns == int(starts) * 1_000_000_000 + 123_456_000


def test_an_answer_that_is_not_a_list_of_alerts_is_refused() -> None:
    with pytest.raises(ValueError, match="not a list"):
        parse_alerts({"error": "x"})


def test_a_registration_names_its_version_and_a_bad_one_is_a_field_violation() -> None:
    good = reg.RegisterRequest(name="sim", kind=reg.KIND_VENUE, address="h:1", version="0.1.0rc1+local")
    check_register(good)
    check_register(reg.RegisterRequest(name="sim", kind=reg.KIND_VENUE, address="h:1"))
    with pytest.raises(InvalidArgument) as raised:
        check_register(reg.RegisterRequest(name="sim", kind=reg.KIND_VENUE, address="h:1", version="1 0\n"))
    assert [v.field for v in raised.value.violations] == ["version"]
    state = RegistryState(ttl_s=10.0)
    entry = state.register("sim", reg.KIND_VENUE, "h:1", [], version="0.1.0")
    assert entry.to_proto().version == "0.1.0"


def test_watch_intervals_are_bounded_and_zero_means_the_default() -> None:
    assert watch_interval_ms(0) == 2000
    assert watch_interval_ms(500) == 500 and watch_interval_ms(60_000) == 60_000
    for bad in (499, 60_001):
        with pytest.raises(InvalidArgument) as raised:
            watch_interval_ms(bad)
        assert raised.value.violations[0].field == "interval_ms" and str(bad) in str(raised.value)


def test_the_alertmanager_url_must_be_an_http_base_url_and_the_error_names_it() -> None:
    assert alertmanager_url("http://127.0.0.1:9093/") == "http://127.0.0.1:9093"
    assert alertmanager_url("") == ""
    for bad, shown in [
        ("127.0.0.1:9093", "1*** (14 characters)"),  # no scheme: masked, as any such value is
        ("ftp://am:9093", "ftp://am:9093"),
        ("http://am:99999", "http://am:99999"),
        ("http://am:9093/?x=1", "http://am:9093/?x=1"),
        ("http://am:pw-57@am:99999", "http://am:***@am:99999"),  # a password is never shown
    ]:
        with pytest.raises(argparse.ArgumentTypeError, match=re.escape(f"{shown} ")):
            alertmanager_url(bad)


def test_the_alertmanager_url_defaults_to_the_environments_and_a_bad_one_is_named(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv(ALERTMANAGER_URL, "http://alertmanager:9093/")
    parser = argparse.ArgumentParser()
    add_board_arguments(parser)
    assert board_options(parser.parse_args([])).alertmanager_url == "http://alertmanager:9093"
    given = ["--alertmanager-url", "http://am:1"]
    assert board_options(parser.parse_args(given)).alertmanager_url == "http://am:1"
    monkeypatch.setenv(ALERTMANAGER_URL, "alertmanager:9093")
    parser = argparse.ArgumentParser()
    add_board_arguments(parser)
    with pytest.raises(SystemExit):
        parser.parse_args([])
    # Without a scheme it is shown as any such value is (a password may be in it): masked.
    assert "a*** (17 characters) is not an Alertmanager base URL" in capsys.readouterr().err


def test_a_registration_sends_the_package_version_and_replicas_share_it() -> None:
    version = package_version()
    assert version != ""  # the tests run from the installed package
    sent = Registration("sim", reg.KIND_VENUE, "h:1", (), 0, version).request()
    assert sent.version == version
    state = RegistryState(ttl_s=10.0)
    entry = state.register("sim", reg.KIND_VENUE, "h:1", [], version=sent.version)
    shared = Entry.shared(reg.Instance.FromString(entry.to_proto().SerializeToString()), expires_at=1.0)
    assert shared.version == version
