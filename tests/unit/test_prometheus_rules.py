"""The Prometheus rules (ops/prometheus/rules): promtool finds them valid and their unit tests
(ops/prometheus/tests) pass; every metric they read is one the code registers (a renamed metric
fails here, not silently in production); every alert has its labels, annotations and runbook
section, and a test that fires it and one that does not."""

from __future__ import annotations

import importlib
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client import REGISTRY

ROOT = Path(__file__).resolve().parents[2]
RULES = sorted((ROOT / "ops/prometheus/rules").glob("*.yml"))
TESTS = sorted((ROOT / "ops/prometheus/tests").glob("*.yml"))
ALERTS_DOC = ROOT / "docs/alerts.md"
# Series Prometheus makes itself, not exported by our code.
BUILTIN_SERIES = {"up"}
# PromQL's keywords and the functions the rules use (an identifier followed by "(" is a
# function anyway; these are also words that may stand alone).
PROMQL_WORDS = {
    "and", "or", "unless", "by", "without", "on", "ignoring", "group_left", "group_right", "bool",
    "offset", "sum", "max", "min", "avg", "count", "topk", "bottomk", "quantile", "stddev",
    "stdvar", "count_values", "group", "inf", "nan",
}  # fmt: skip
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'')
_MATCHERS = re.compile(r"\{[^}]*\}")
_RANGE = re.compile(r"\[[^\]]*\]")
_OFFSET = re.compile(r"\boffset\s+-?(?:\d+(?:ms|[smhdwy]))+")
_LABEL_LIST = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)")
_IDENT = re.compile(r"[A-Za-z_:][A-Za-z0-9_:]*")
_HISTOGRAM_SUFFIXES = ("_bucket", "_sum", "_count")


def _promtool() -> str:
    found = shutil.which("promtool")
    if found is None:
        pytest.fail(
            "promtool not found: `./dev test` installs Debian's prometheus, which ships it "
            "(or: apt-get install -y prometheus)"
        )
    return found


def _each_file(command: str, paths: list[Path], heading: str) -> dict[Path, str]:
    """`promtool <command> rules` over every file in one run (promtool checks each file on its
    own, heading its report with `heading` and the file): each file's report, its errors in it
    (stderr, where promtool writes them, goes into the same pipe, so in order)."""
    names = [str(path.relative_to(ROOT)) for path in paths]
    done = subprocess.run(
        [_promtool(), command, "rules", *names],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=300,
        cwd=ROOT,
        # Go's collector run a quarter as often: promtool peaks at ~175 MB rather than ~60 MB
        # over the unit tests, and spends about a quarter less CPU.
        env={**os.environ, "GOGC": "400"},
    )
    reports: dict[str, list[str]] = {}
    for line in done.stdout.splitlines():
        if line.startswith(heading):
            reports[line.removeprefix(heading).strip()] = []
        elif reports:
            reports[list(reports)[-1]].append(line)
    found = {ROOT / name: "\n".join(lines).strip() for name, lines in reports.items()}
    if list(found) != paths or (done.returncode != 0 and all(map(_passed, found.values()))):
        pytest.fail(f"promtool {command} rules {' '.join(names)}: exit {done.returncode}\n{done.stdout}")
    return found


def _passed(report: str) -> bool:
    return report.startswith("SUCCESS")


@pytest.fixture(scope="module")
def rule_checks() -> dict[Path, str]:
    return _each_file("check", RULES, "Checking ")


@pytest.fixture(scope="module")
def unit_tests() -> dict[Path, str]:
    return _each_file("test", TESTS, "Unit Testing:")


def _load(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


def _rules() -> list[dict[str, Any]]:
    return [rule for path in RULES for group in _load(path)["groups"] for rule in group["rules"]]


def _alerts() -> list[dict[str, Any]]:
    return [rule for rule in _rules() if "alert" in rule]


def series_names(expr: str) -> set[str]:
    """The series an expression reads: its identifiers, less label names and values, ranges,
    functions and keywords."""
    text = _STRING.sub(" ", expr)
    text = _MATCHERS.sub(" ", text)
    text = _RANGE.sub(" ", text)
    text = _OFFSET.sub(" ", text)
    text = _LABEL_LIST.sub(" ", text)
    names = set()
    for found in _IDENT.finditer(text):
        word, rest = found.group(), text[found.end() :].lstrip()
        if rest.startswith("(") or word.lower() in PROMQL_WORDS:
            continue
        names.add(word)
    return names


def _metric_modules() -> list[str]:
    modules = []
    for folder in ("trademesh/core", "trademesh/venues", "trademesh/gateway"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            if "prometheus_client import" in path.read_text():
                modules.append(".".join(path.relative_to(ROOT).with_suffix("").parts))
    return modules


def registered_series() -> set[str]:
    """Every series name the code's metrics export, from the registry once their modules are
    imported (a labelled metric with no child yet still has its family there)."""
    for module in _metric_modules():
        importlib.import_module(module)
    names = set()
    for family in REGISTRY.collect():
        if family.type == "counter":
            names.add(f"{family.name}_total")
        elif family.type == "histogram":
            names.update(f"{family.name}{suffix}" for suffix in _HISTOGRAM_SUFFIXES)
        else:
            names.add(family.name)
    return names


def _unknown(expr: str, known: set[str]) -> set[str]:
    return series_names(expr) - known


@pytest.mark.parametrize("path", RULES, ids=lambda p: p.name)
def test_promtool_finds_each_rule_file_valid(path: Path, rule_checks: dict[Path, str]) -> None:
    assert _passed(rule_checks[path]), f"promtool check rules {path} failed:\n{rule_checks[path]}"


@pytest.mark.parametrize("path", TESTS, ids=lambda p: p.name)
def test_each_promtool_unit_test_file_passes(path: Path, unit_tests: dict[Path, str]) -> None:
    assert _passed(unit_tests[path]), f"promtool test rules {path} failed:\n{unit_tests[path]}"


def test_every_series_a_rule_reads_is_registered_by_the_code() -> None:
    recorded = {rule["record"] for rule in _rules() if "record" in rule}
    known = registered_series() | recorded | BUILTIN_SERIES
    unknown = {rule.get("alert") or rule["record"]: _unknown(rule["expr"], known) for rule in _rules()}
    assert {name: names for name, names in unknown.items() if names} == {}
    read = set().union(*(series_names(rule["expr"]) for rule in _rules()))
    assert "trademesh_bus_lag" in read and "grpc_server_handling_seconds_bucket" in read


def test_a_renamed_metric_is_caught() -> None:
    known = registered_series()
    assert series_names("increase(a_total[7m] offset 1h30m) > 0 and b offset 2m") == {"a_total", "b"}
    assert _unknown('sum by (venue) (rate(trademesh_venue_events_total{venue="x"}[5m]))', known) == set()
    renamed = 'sum by (venue) (rate(trademesh_venue_event_total{venue="x"}[5m])) > on (venue) up'
    assert _unknown(renamed, known | BUILTIN_SERIES) == {"trademesh_venue_event_total"}


def test_every_alert_has_for_severity_annotations_and_a_runbook_section() -> None:
    headings = set(re.findall(r"^## (\w+)$", ALERTS_DOC.read_text(), flags=re.MULTILINE))
    for alert in _alerts():
        name = alert["alert"]
        assert "for" in alert, name
        assert alert["labels"]["severity"] in {"critical", "warning"}, name
        annotations = alert["annotations"]
        assert annotations["summary"] and annotations["description"], name
        assert annotations["runbook"] == f"docs/alerts.md#{name.lower()}", name
        assert name in headings, f"docs/alerts.md has no section ## {name}"


def test_every_alert_is_tested_firing_and_not_firing() -> None:
    firing: set[str] = set()
    quiet: set[str] = set()
    for path in TESTS:
        for test in _load(path)["tests"]:
            for case in test.get("alert_rule_test", []):
                (firing if case.get("exp_alerts") else quiet).add(case["alertname"])
    names = {alert["alert"] for alert in _alerts()}
    assert names - firing == set(), "alerts no test fires"
    assert names - quiet == set(), "alerts no test expects quiet"


def test_no_metric_has_a_label_the_service_discovery_sets() -> None:
    """Prometheus renames a scraped label the target also has (`exported_<name>`): no metric of
    ours may carry `service`, `kind` or `instance_id` (trademesh/gateway/registry/targets.py). `venue` is
    the one shared on purpose: a venue's target label holds the same name its metrics do."""
    registered_series()  # imports every module with metrics
    clashes = {
        name: sorted(set(getattr(collector, "_labelnames", ())) & {"service", "kind", "instance_id"})
        for collector, names in list(REGISTRY._collector_to_names.items())
        for name in names
    }
    assert {name: labels for name, labels in clashes.items() if labels} == {}
