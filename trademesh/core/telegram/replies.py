"""What the bot says back: a tool's answer in a few lines a person reads on a phone."""

from __future__ import annotations

from typing import Any

__all__ = ["mode_text", "status_text", "switched_text"]

Json = dict[str, Any]


def status_text(state: Json) -> str:
    lines = [
        f"Risk: {state.get('state', '?')}",
        f"Equity {state.get('equity', '?')} (start {state.get('starting_equity', '?')})",
        f"PnL realised {state.get('realized_pnl', '?')}, unrealised {state.get('unrealized_pnl', '?')}, "
        f"fees {state.get('fees', '?')}",
    ]
    drawdown = state.get("drawdown") or {}
    if drawdown:
        lines.append(f"Drawdown {drawdown.get('value', '?')} (limit {drawdown.get('limit') or 'none'})")
    down = state.get("venues_stood_down") or {}
    if down:
        lines.append("Venues stood down: " + ", ".join(f"{v} ({why})" for v, why in sorted(down.items())))
    return "\n".join(lines)


def switched_text(answer: Json) -> str:
    patches = answer.get("patches", [])
    listed = ", ".join(f"{p.get('patch')}: {p.get('state')}" for p in patches)
    return f"{answer.get('strategy', '?')}: {len(patches)} patches ({listed})"


def mode_text(answer: Json) -> str:
    return f"Risk: {answer.get('state', '?')}"
