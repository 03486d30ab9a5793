"""The Grafana dashboards (ops/grafana/dashboards/*.json) as the tests read them: every panel
query with where it comes from, the template variables, and a query with its variables
substituted as Grafana would (tests/unit/test_grafana_dashboards.py checks them offline,
tests/integration/test_prometheus.py against a real Prometheus)."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
DASHBOARDS = sorted((ROOT / "ops/grafana/dashboards").glob("*.json"))
PROMETHEUS_UID = "prometheus"
LOKI_UID = "loki"
# Grafana's own variables, as the tests substitute them: the scrape interval is 1 s in the
# integration test's Prometheus, 15 s in compose's; a minute spans four scrapes of either.
BUILTINS = {"__rate_interval": "1m", "__interval": "15s", "__range": "1h"}
VARIABLE = re.compile(r"\$\{?(\w+)(?::\w+)?\}?")
LABEL_VALUES = re.compile(r"^label_values\((?:(.*),\s*)?(\w+)\)$")

__all__ = [
    "BUILTINS",
    "DASHBOARDS",
    "LABEL_VALUES",
    "LOKI_UID",
    "PROMETHEUS_UID",
    "VARIABLE",
    "Query",
    "dashboards",
    "queries",
    "substitute",
    "variables",
]


@dataclass(frozen=True)
class Query:
    dashboard: str  # its uid
    panel: str  # its title
    ref_id: str
    datasource: str  # its uid
    expr: str

    @property
    def where(self) -> str:
        return f"{self.dashboard} / {self.panel} / {self.ref_id}"


def dashboards() -> dict[Path, dict[str, Any]]:
    return {path: json.loads(path.read_text()) for path in DASHBOARDS}


def queries() -> list[Query]:
    found = []
    for board in dashboards().values():
        for panel in board["panels"]:
            for target in panel.get("targets", []):
                uid = target.get("datasource", {}).get("uid")
                found.append(Query(board["uid"], panel["title"], target["refId"], uid, target["expr"]))
    return found


def variables(board: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    return {v["name"]: v for v in board.get("templating", {}).get("list", [])}


def substitute(expr: str, values: Mapping[str, str]) -> str:
    """`expr` with every `$var` / `${var}` replaced; a variable with no value is a KeyError."""
    return VARIABLE.sub(lambda found: values[found.group(1)], expr)
