"""The Supervisor's Prometheus metrics. Every label set it can take exists from the start (at 0):
a dashboard's rate or an alert's ratio has a series before the first proposal or action."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

from trademesh.core.supervisor.engine import ActionKind, Mode

__all__ = ["ACTIONS", "LOOK_SECONDS", "MODE", "OBSERVATIONS", "OPEN", "PROPOSALS", "WATCHERS", "set_mode"]

OBSERVATIONS = Counter(
    "trademesh_supervisor_observations_total",
    "Looks at the mesh, by outcome: complete; partial (the regimes or the policies missing: judged "
    "without them); incomplete (the strategies, their PnL or the risk state missing: nothing judged).",
    ["outcome"],
)
PROPOSALS = Counter(
    "trademesh_supervisor_proposals_total",
    "Proposals, by action and verdict (taken: checked and opened or acted on; refused).",
    ["action", "verdict"],
)
ACTIONS = Counter(
    "trademesh_supervisor_actions_total",
    "Actions carried out, by action and outcome (done, failed).",
    ["action", "outcome"],
)
OPEN = Gauge("trademesh_supervisor_open_proposals", "Proposals waiting for an operator.")
WATCHERS = Gauge("trademesh_supervisor_watchers", "Open StreamAudit calls.")
MODE = Gauge(
    "trademesh_supervisor_mode", "1 for the mode it is in (off, propose, act), 0 for the others.", ["mode"]
)
# A look is a handful of tool calls through the gateway, and with an LLM its answer (seconds).
LOOK_SECONDS = Histogram(
    "trademesh_supervisor_look_seconds",
    "One look at the mesh: its tools read, the model asked (with one), the engine's verdicts carried out.",
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0),
)


def set_mode(mode: Mode) -> None:
    for each in Mode:
        MODE.labels(each.value).set(1 if each is mode else 0)


for _outcome in ("complete", "partial", "incomplete"):
    OBSERVATIONS.labels(_outcome)
for _kind in ActionKind:
    for _verdict in ("taken", "refused"):
        PROPOSALS.labels(_kind.value, _verdict)
    for _done in ("done", "failed"):
        ACTIONS.labels(_kind.value, _done)
