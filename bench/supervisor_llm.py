"""The Supervisor's decisions per minute with an LLM and without (issue 42, "Figures": "decisions
per minute with a 200 ms LLM stand-in and without").

A decision is one look's verdicts: the observation through the engine (the deterministic rules,
every proposal checked, act mode so none waits), and, with the model, the model asked first
through the Supervisor's own client (trademesh.core.supervisor.llm.SupervisorLlm: the OpenAI client, one
tool `propose` with its JSON schema) and its proposals checked beside the rules'. The model is
the LLM stand-in (tests/llm_standin.py, its own process, speaking OpenAI's HTTP API) in its
`supervise` mode, answering after --latency-ms (200: a small model on vLLM). The observation is
bench/supervisor_look.py's (--strategies synthetic strategies); gathering it through the
gateway's tools is not counted (a live look reads 5 tools first: docs/supervisor.md).

Looks run one after another, as the service runs them. Reported per mode: the median of
--repeats runs of --looks looks, as looks (decisions) per minute and ms a look, and the
proposals the model made a look.

    .venv/bin/python bench/supervisor_llm.py                 # 50 strategies, 200 ms, 5 x 20 looks
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as common
from supervisor_look import BOUNDS, observation

from tests.llm_standin import start_standin
from trademesh.core.supervisor.engine import Mode, Observation, Supervisor
from trademesh.core.supervisor.llm import SupervisorLlm


async def _looks(seen: Observation, looks: int, llm: SupervisorLlm | None) -> tuple[float, int]:
    """Seconds for `looks` looks in a row, and the model's proposals over them."""
    asked_for = 0
    began = time.perf_counter()
    for _ in range(looks):
        engine = Supervisor(BOUNDS, Mode.ACT)
        suggested: tuple[Any, ...] = ()
        if llm is not None:
            asked = await llm.ask(seen, BOUNDS)
            suggested = asked.proposals
            asked_for += len(suggested)
        engine.observe(seen, suggested)
    return time.perf_counter() - began, asked_for


async def _mode(seen: Observation, args: argparse.Namespace, llm: SupervisorLlm | None) -> dict[str, Any]:
    await _looks(seen, 2, llm)  # warm: the client's connection, the engine's first import paths
    runs = [await _looks(seen, args.looks, llm) for _ in range(args.repeats)]
    per_look_s = [elapsed / args.looks for elapsed, _ in runs]
    median = statistics.median(per_look_s)
    return {
        "ms_per_look_median": round(median * 1000, 3),
        "ms_per_look_min": round(min(per_look_s) * 1000, 3),
        "ms_per_look_max": round(max(per_look_s) * 1000, 3),
        "decisions_per_minute_median": round(60 / median, 1),
        "model_proposals_per_look": round(runs[0][1] / args.looks, 2),
    }


async def _run(args: argparse.Namespace) -> dict[str, Any]:
    seen = observation(args.strategies, seed=7)
    results = {"rules only": await _mode(seen, args, None)}
    standin = start_standin("supervise", latency_ms=args.latency_ms)
    llm = SupervisorLlm(standin.base_url, "primary", None)
    try:
        results[f"rules + LLM ({args.latency_ms:g} ms)"] = await _mode(seen, args, llm)
    finally:
        await llm.aclose()
        standin.stop()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--strategies", type=int, default=50)
    parser.add_argument("--latency-ms", type=float, default=200.0)
    parser.add_argument("--looks", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--no-save", action="store_true")
    args = parser.parse_args()
    results = asyncio.run(_run(args))
    for mode, figures in results.items():
        print(
            f"{mode:24} {figures['decisions_per_minute_median']:>10} decisions/min, "
            f"{figures['ms_per_look_median']} ms a look ({figures['ms_per_look_min']}-"
            f"{figures['ms_per_look_max']}), the model's proposals a look: "
            f"{figures['model_proposals_per_look']}"
        )
    if not args.no_save:
        payload = {
            "bench": "supervisor_llm", "at": common.now_iso(), "command": common.command_line(),
            "machine": common.machine(), "params": vars(args), "figures": results,
        }  # fmt: skip
        print(common.write_result("supervisor_llm", payload))


if __name__ == "__main__":
    main()
