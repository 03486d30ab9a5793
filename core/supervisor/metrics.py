"""The Supervisor's Prometheus metrics."""

from __future__ import annotations

from prometheus_client import Counter, Gauge

__all__ = ["ACTIONS", "OBSERVATIONS", "OPEN", "PROPOSALS"]

OBSERVATIONS = Counter(
    "trademesh_supervisor_observations_total",
    "Looks at the mesh, by outcome (complete, or partial: a tool failed and its part is missing).",
    ["outcome"],
)
PROPOSALS = Counter(
    "trademesh_supervisor_proposals_total",
    "Proposals, by action kind and verdict (taken: checked and opened or acted on; refused).",
    ["kind", "verdict"],
)
ACTIONS = Counter(
    "trademesh_supervisor_actions_total",
    "Actions carried out, by kind and outcome (done, failed).",
    ["kind", "outcome"],
)
OPEN = Gauge("trademesh_supervisor_open_proposals", "Proposals waiting for an operator.")
