"""The Grafana dashboards (ops/grafana/dashboards), checked offline (Grafana is not installable
here): each has the structure Grafana needs, every variable a query uses is defined, every PromQL
expression passes promtool, and every series it reads is one the code registers or a recording
rule. tests/integration/test_prometheus.py runs every query against a real Prometheus."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.grafana_support import (
    BUILTINS,
    DASHBOARDS,
    LABEL_VALUES,
    LOKI_UID,
    PROMETHEUS_UID,
    VARIABLE,
    Query,
    dashboards,
    queries,
    substitute,
    variables,
)
from tests.unit.test_prometheus_rules import BUILTIN_SERIES, RULES, _promtool, registered_series, series_names

PANEL_TYPES = {"timeseries", "stat", "table", "logs"}
EXPECTED = {
    "trademesh-overview",
    "trademesh-venue",
    "trademesh-bus",
    "trademesh-chain",
    "trademesh-risk",
    "trademesh-ledger",
}
GRID_COLUMNS = 24
# A value for each dashboard variable that makes a valid PromQL (or LogQL) matcher.
SAMPLE = {**BUILTINS, "venue": "sim", "service": ".+"}


def _boards() -> dict[Path, dict[str, Any]]:
    return dashboards()


def _recorded() -> set[str]:
    return {
        rule["record"]
        for path in RULES
        for group in yaml.safe_load(path.read_text())["groups"]
        for rule in group["rules"]
        if "record" in rule
    }


def _prometheus_queries() -> list[Query]:
    return [query for query in queries() if query.datasource == PROMETHEUS_UID]


def _variable_selectors() -> list[tuple[str, str]]:
    """Each label_values(...) variable's series selector, named by dashboard and variable."""
    selectors = []
    for board in _boards().values():
        for name, variable in variables(board).items():
            found = LABEL_VALUES.match(variable["query"]["query"])
            assert found is not None, f"{board['uid']}: ${name} is not label_values(selector, label)"
            assert found.group(1), f"{board['uid']}: ${name} reads every series: name a metric"
            selectors.append((f"{board['uid']} ${name}", found.group(1)))
    return selectors


def test_there_are_the_six_dashboards_each_with_a_unique_uid() -> None:
    uids = [board["uid"] for board in _boards().values()]
    assert sorted(uids) == sorted(EXPECTED)
    assert len(DASHBOARDS) == len(EXPECTED)


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.name)
def test_each_dashboard_has_what_grafana_needs(path: Path) -> None:
    board = _boards()[path]
    assert board["title"].startswith("trademesh / ")
    assert isinstance(board["schemaVersion"], int) and 36 <= board["schemaVersion"] <= 41
    assert board["panels"], path.name
    ids = [panel["id"] for panel in board["panels"]]
    assert len(ids) == len(set(ids)), f"{path.name}: panel ids repeat"
    for panel in board["panels"]:
        where = f"{path.name}: {panel['title']}"
        assert panel["type"] in PANEL_TYPES, where
        grid = panel["gridPos"]
        assert all(isinstance(grid[key], int) for key in ("x", "y", "w", "h")), where
        assert grid["w"] > 0 and grid["h"] > 0 and grid["x"] >= 0 and grid["x"] + grid["w"] <= GRID_COLUMNS
        wanted = LOKI_UID if panel["type"] == "logs" else PROMETHEUS_UID
        assert panel["datasource"]["uid"] == wanted, where
        refs = [target["refId"] for target in panel["targets"]]
        assert refs and len(refs) == len(set(refs)), where
        for target in panel["targets"]:
            assert target["expr"].strip(), where
            assert target["datasource"] == panel["datasource"], where


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.name)
def test_every_variable_a_dashboard_uses_is_defined(path: Path) -> None:
    board = _boards()[path]
    defined = set(variables(board)) | set(BUILTINS)
    texts = [target["expr"] for panel in board["panels"] for target in panel["targets"]]
    texts += [variable["query"]["query"] for variable in variables(board).values()]
    used = {found.group(1) for text in texts for found in VARIABLE.finditer(text)}
    assert used - defined == set()
    for name, variable in variables(board).items():
        assert variable["datasource"]["uid"] == PROMETHEUS_UID, name
        assert variable["definition"] == variable["query"]["query"], name
        assert name in SAMPLE, f"give ${name} a sample value here"


def _rule_name(index: int) -> str:
    return f"grafana_query_{index}"


def _promtool_check(exprs: list[tuple[str, str]], directory: Path) -> str | None:
    """promtool 2.42 has no `parse expr`: each expression becomes a recording rule of a scratch
    rule file, which `promtool check rules` parses. None when all parse, else what it said (the
    rules named by where their expressions come from)."""
    rules = [{"record": _rule_name(i), "expr": expr} for i, (_, expr) in enumerate(exprs)]
    path = directory / "grafana.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "grafana", "rules": rules}]}))
    done = subprocess.run(
        [_promtool(), "check", "rules", str(path)], capture_output=True, text=True, timeout=60, check=False
    )
    if done.returncode == 0 and f"{len(rules)} rules found" in done.stdout:
        return None
    named = {_rule_name(i): where for i, (where, _) in enumerate(exprs)}
    return re.sub(r"grafana_query_\d+", lambda m: named.get(m.group(), m.group()), done.stdout + done.stderr)


def test_promtool_parses_every_prometheus_query_and_variable_selector(tmp_path: Path) -> None:
    exprs = [(query.where, substitute(query.expr, SAMPLE)) for query in _prometheus_queries()]
    exprs += [(where, substitute(selector, SAMPLE)) for where, selector in _variable_selectors()]
    # A Loki query's stream selector is a PromQL selector too.
    exprs += [
        (query.where, substitute(query.expr, SAMPLE).split("|")[0])
        for query in queries()
        if query.datasource == LOKI_UID
    ]
    assert _promtool_check(exprs, tmp_path) is None


def test_promtool_refuses_a_broken_query(tmp_path: Path) -> None:
    said = _promtool_check([("a panel", "sum by (venue (up)")], tmp_path)
    assert said is not None and "a panel" in said


def test_every_series_a_dashboard_reads_is_registered_by_the_code_or_recorded() -> None:
    known = registered_series() | _recorded() | BUILTIN_SERIES
    unknown = {
        query.where: series_names(substitute(query.expr, SAMPLE)) - known for query in _prometheus_queries()
    }
    for where, selector in _variable_selectors():
        unknown[where] = series_names(substitute(selector, SAMPLE)) - known
    assert {where: names for where, names in unknown.items() if names} == {}
    read = set().union(*(series_names(query.expr) for query in _prometheus_queries()))
    assert {"group:trademesh_bus_lag:sum", "trademesh_venue_subscribers", "up"} <= read


def test_a_misspelt_series_in_a_dashboard_is_caught() -> None:
    known = registered_series() | _recorded()
    good = 'sum by (channel) (venue_channel:trademesh_venue_events:rate1m{venue="$venue"})'
    assert series_names(substitute(good, SAMPLE)) - known == set()
    bad = good.replace("events:rate1m", "event:rate1m")
    assert series_names(substitute(bad, SAMPLE)) - known == {"venue_channel:trademesh_venue_event:rate1m"}


def test_the_logs_panel_shows_the_lines_of_the_chosen_services_from_loki() -> None:
    logs = [query for query in queries() if query.datasource == LOKI_UID]
    assert [query.expr for query in logs] == ['{service=~"$service"}']
    overview = next(board for board in _boards().values() if board["uid"] == "trademesh-overview")
    service = variables(overview)["service"]
    # "All" must stay a matcher Loki accepts: one that matches the empty string is refused.
    assert service["includeAll"] and service["allValue"] == ".+"
