"""The LLM stand-in: a real HTTP server speaking OpenAI's chat completions API, for tests and benches.

    python -m tests.llm_standin --port 0 --mode good [--model primary=slow] [--latency-ms 200]

POST /v1/chat/completions takes the real API's JSON body and answers as the API does
(choices[0].message.content or .tool_calls, usage, model), errors in OpenAI's error JSON
(`{"error": {"message", "type", "param", "code"}}`); GET /v1/models lists the models given a
mode. The user message is the advisor's context (JSON); the answer follows the advisor's
schema (bias, confidence, reasoning, size_multiplier). How it answers is its mode, per model
(`--model NAME=MODE`, any other model gets `--mode`):

- good: the signal's direction, its conviction as confidence, reasoning that quotes only
  numbers of the context;
- slow: sleeps --slow-s (past the client's timeout), then answers as good;
- broken: HTTP 500 in OpenAI's error shape;
- flaky: HTTP 500 for the model's first --flaky-failures requests, then as good (a recovery);
- invalid-json: HTTP 200 whose content is cut-off JSON;
- lying: the opposite direction with no reason given, and numbers that appear nowhere;
- tools: first calls the first offered tool (arguments filled from the signal), then answers
  as good, quoting a number of the tool's result;
- tool-loop: calls a tool whenever tools are offered and tool_choice is not "none".
- supervise: the Supervisor's model (docs/supervisor.md): its user message is an observation
  (JSON: strategies, regimes, risk); it calls the offered tool `propose` once, to pause the
  first strategy not paused, its reason quoting that strategy's drawdown;
- supervise-lying: calls `propose` twice: a pause of a strategy that does not exist ("ghost")
  and a capital far past any bound for the first strategy.
- supervise-surrogate-content, -surrogate-name, -surrogate-arguments, -nested-answer,
  -nested-arguments: answers as supervise but malformed as a broken or hostile endpoint may be:
  a lone surrogate's escape ("\\ud800") in the content, in the call's name, in its arguments'
  reason; the answer holding a field nested 5,000 deep; the call's arguments nested 5,000 deep.
- nested-answer, surrogate-content, tools-nested: the advisor's answers malformed so: good's
  answer with a field nested 5,000 deep beside it; good's answer whose reasoning holds a lone
  surrogate (escaped in the body); tools' call with its arguments nested 5,000 deep.
- shapeless: HTTP 200 whose choices are a string: JSON, not a chat completion.

--latency-ms delays every answer (the throughput benchmark's 200 ms model). --api-key makes
it require `Authorization: Bearer <key>`; a wrong key gets HTTP 401 whose message echoes the
key it was given, as OpenAI's does, so tests can prove the client side scrubs it.
GET /standin/requests lists what it was asked (model, mode, status, tool_choice, ...);
DELETE clears it. On start it prints `{"event": "serving", "host", "port"}`
(trademesh.core.platform.service.process).
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import socket
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from trademesh.core.platform.service.process import ServiceProcess, start_service

__all__ = ["MODES", "Standin", "StandinConfig", "create_app", "main", "serve", "start_standin"]

MODES = (
    "good", "slow", "broken", "flaky", "invalid-json", "lying", "tools", "tool-loop", "supervise",
    "supervise-lying", *(f"supervise-{bad}" for bad in ("surrogate-content", "surrogate-name",
    "surrogate-arguments", "nested-answer", "nested-arguments")), "nested-answer", "surrogate-content",
    "tools-nested", "shapeless",
)  # fmt: skip
# Where a nested-answer mode's answer holds JSON nested thousands deep (no json.dumps makes it).
_DEEP = "__deep__"
_DEPTH = 5000
_OPPOSITE = {"long": "short", "short": "long", "flat": "long"}
# What the lying mode claims: numbers no context of ours holds.
_INVENTED = ("97.31", "4.27", "13")


@dataclass(frozen=True)
class StandinConfig:
    mode: str = "good"
    # model name -> mode; every other model gets `mode`.
    modes: Mapping[str, str] = field(default_factory=dict)
    latency_ms: float = 0.0
    slow_s: float = 5.0
    api_key: str | None = None
    flaky_failures: int = 3

    def mode_of(self, model: str) -> str:
        return self.modes.get(model, self.mode)


@dataclass
class _State:
    config: StandinConfig
    requests: list[dict[str, Any]] = field(default_factory=list)
    ids: itertools.count[int] = field(default_factory=itertools.count)
    # Requests seen per model (flaky's count).
    seen: dict[str, int] = field(default_factory=dict)

    def failing(self, model: str, mode: str) -> bool:
        self.seen[model] = self.seen.get(model, 0) + 1
        return mode == "broken" or (mode == "flaky" and self.seen[model] <= self.config.flaky_failures)


def _error(status: int, message: str, kind: str, code: str | None = None) -> JSONResponse:
    body = {"error": {"message": message, "type": kind, "param": None, "code": code}}
    return JSONResponse(body, status_code=status)


# ---------------------------------------------------------------- reading the request


def _context(messages: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """The advisor's context: the first user message's JSON ({} when it is not JSON)."""
    for message in messages:
        if message.get("role") == "user" and isinstance(message.get("content"), str):
            try:
                value = json.loads(message["content"])
            except ValueError:
                return {}
            return value if isinstance(value, dict) else {}
    return {}


def _tool_results(messages: Sequence[Mapping[str, Any]]) -> list[str]:
    return [str(m.get("content", "")) for m in messages if m.get("role") == "tool"]


def _direction(context: Mapping[str, Any]) -> str:
    signal = context.get("signal")
    raw = str(signal.get("direction", "")) if isinstance(signal, dict) else ""
    raw = raw.lower().removeprefix("direction_")
    return raw if raw in _OPPOSITE else "flat"


def _numbers(value: Any) -> list[str]:
    """Every number in a JSON value, as written (numeric strings included), in order."""
    if isinstance(value, dict):
        return [n for v in value.values() for n in _numbers(v)]
    if isinstance(value, list):
        return [n for v in value for n in _numbers(v)]
    if isinstance(value, bool) or value is None:
        return []
    text = str(value)
    try:
        Decimal(text)
    except InvalidOperation:
        return []
    return [text] if any(c.isdigit() for c in text) else []


def _conviction(context: Mapping[str, Any]) -> tuple[str, float]:
    signal = context.get("signal")
    text = str(signal.get("conviction", "")) if isinstance(signal, dict) else ""
    try:
        return text, min(1.0, max(0.0, float(text)))
    except ValueError:
        return "", 0.5


# ---------------------------------------------------------------- answers


def _good(context: Mapping[str, Any], tool_results: Sequence[str]) -> dict[str, Any]:
    direction = _direction(context)
    text, confidence = _conviction(context)
    reasoning = f"The signal is {direction}" + (f" with conviction {text}" if text else "") + "."
    seen = [n for n in _numbers(context) if n != text][:2]
    if seen:
        reasoning += f" The context also shows {' and '.join(seen)}."
    found = [n for r in tool_results for n in _numbers(_json_or_text(r))][:1]
    if found:
        reasoning += f" The tool reported {found[0]}."
    return {"bias": direction, "confidence": confidence, "reasoning": reasoning, "size_multiplier": 1.0}


def _json_or_text(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return text


def _lying(context: Mapping[str, Any]) -> dict[str, Any]:
    a, b, c = _INVENTED
    return {
        "bias": _OPPOSITE[_direction(context)],
        "confidence": 0.99,
        "reasoning": f"RSI printed {a} and funding hit {b}% in {c} minutes.",
        "size_multiplier": 2.0,
    }


def _tool_call(
    state: _State, tools: Sequence[Mapping[str, Any]], context: Mapping[str, Any]
) -> dict[str, Any]:
    function = tools[0].get("function", {})
    wanted = function.get("parameters", {}).get("properties", {})
    signal = context.get("signal") if isinstance(context.get("signal"), dict) else {}
    arguments = {k: signal[k] for k in wanted if isinstance(signal, dict) and k in signal}
    call_id = f"call_{next(state.ids)}"
    return {
        "id": call_id,
        "type": "function",
        "function": {"name": function.get("name", ""), "arguments": json.dumps(arguments)},
    }


def _proposals(state: _State, mode: str, context: Mapping[str, Any]) -> list[dict[str, Any]]:
    strategies = [s for s in context.get("strategies", []) if isinstance(s, dict)]
    if mode == "supervise-lying":
        first = strategies[0]["strategy"] if strategies else "trend"
        wanted = [
            {"kind": "pause", "strategy": "ghost", "reason": "ghost lost 97.31% overnight"},
            {"kind": "set_capital", "strategy": first, "value": "999999999", "reason": "more is better"},
        ]
    else:
        running = next((s for s in strategies if not s.get("paused")), None)
        if running is None:
            return []
        why = f"{running['strategy']}'s drawdown is {running.get('drawdown')}"
        wanted = [{"kind": "pause", "strategy": running["strategy"], "reason": why}]
    return [_malformed_call(mode, {
        "id": f"call_{next(state.ids)}", "type": "function",
        "function": {"name": "propose", "arguments": json.dumps(arguments)}})
        for arguments in wanted
    ]  # fmt: skip


def _malformed_call(mode: str, call: dict[str, Any]) -> dict[str, Any]:
    """`call` as a malformed mode makes it (a lone surrogate: sent as JSON's escape of it)."""
    function = call["function"]
    if mode == "supervise-surrogate-name":
        function["name"] = "propose\udfff"
    elif mode == "supervise-surrogate-arguments":
        arguments = json.loads(function["arguments"])
        function["arguments"] = json.dumps({**arguments, "reason": "drawdown \ud800 seen"})
    elif mode == "supervise-nested-arguments":
        function["arguments"] = "[" * _DEPTH + "]" * _DEPTH
    return call


def _message(state: _State, mode: str, body: Mapping[str, Any]) -> dict[str, Any]:
    """The assistant message of a mode that answers (not broken, not slow's sleep)."""
    messages = body.get("messages", [])
    context = _context(messages)
    tools = body.get("tools") or []
    may_call = bool(tools) and body.get("tool_choice", "auto") != "none"
    results = _tool_results(messages)
    if may_call and mode.startswith("supervise"):
        calls = _proposals(state, mode, context)
        content = "Nothing to propose." if not calls else None
        if mode == "supervise-surrogate-content":
            content = "I see \ud800 nothing"
        message: dict[str, Any] = {"role": "assistant", "content": content}
        if mode == "supervise-nested-answer":
            message["audio"] = _DEEP
        return message | ({"tool_calls": calls} if calls else {})
    if may_call and (mode == "tool-loop" or (mode in ("tools", "tools-nested") and not results)):
        call = _tool_call(state, tools, context)
        if mode == "tools-nested":
            call["function"]["arguments"] = "[" * _DEPTH + "]" * _DEPTH
        return {"role": "assistant", "content": None, "tool_calls": [call]}
    if mode == "invalid-json":
        return {"role": "assistant", "content": '{"bias": "long", "confidence": 0.8, "reasoning": "cut'}
    answer = _lying(context) if mode == "lying" else _good(context, results)
    if mode == "surrogate-content":
        answer["reasoning"] += " \ud800"
        return {"role": "assistant", "content": json.dumps(answer, ensure_ascii=False)}
    if mode == "nested-answer":
        return {"role": "assistant", "content": json.dumps(answer), "audio": _DEEP}
    return {"role": "assistant", "content": json.dumps(answer)}


def _completion(
    state: _State, model: str, message: dict[str, Any], body: Mapping[str, Any]
) -> dict[str, Any]:
    prompt_chars = sum(len(str(m.get("content") or "")) for m in body.get("messages", []))
    completion_chars = len(message.get("content") or json.dumps(message.get("tool_calls")))
    usage = {"prompt_tokens": prompt_chars // 4 + 1, "completion_tokens": completion_chars // 4 + 1}
    usage["total_tokens"] = usage["prompt_tokens"] + usage["completion_tokens"]
    return {
        "id": f"chatcmpl-standin-{next(state.ids)}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "system_fingerprint": "llm-standin",
        "choices": [
            {
                "index": 0,
                "message": {"refusal": None, **message},
                "finish_reason": "tool_calls" if message.get("tool_calls") else "stop",
                "logprobs": None,
            }
        ],
        "usage": usage,
    }


# ---------------------------------------------------------------- the endpoints


def _authorised(state: _State, request: Request) -> JSONResponse | None:
    key = state.config.api_key
    given = request.headers.get("authorization", "").removeprefix("Bearer ")
    if key is None or given == key:
        return None
    return _error(401, f"Incorrect API key provided: {given}.", "invalid_request_error", "invalid_api_key")


async def _body(request: Request) -> dict[str, Any] | None:
    try:
        body = json.loads(await request.body())
    except ValueError:
        return None
    ok = (
        isinstance(body, dict)
        and isinstance(body.get("model"), str)
        and isinstance(body.get("messages"), list)
    )
    return body if ok else None


def _record(state: _State, body: Mapping[str, Any], mode: str, status: int) -> None:
    state.requests.append(
        {
            "model": body.get("model"),
            "mode": mode,
            "status": status,
            "tool_choice": body.get("tool_choice"),
            "tools": [t.get("function", {}).get("name") for t in body.get("tools") or []],
            "response_format": (body.get("response_format") or {}).get("type"),
            "messages": len(body.get("messages", [])),
        }
    )


async def _chat(request: Request) -> Response:
    state: _State = request.app.state.standin
    refused = _authorised(state, request)
    if refused is not None:
        return refused
    body = await _body(request)
    if body is None:
        return _error(400, "the body must be JSON with a model and messages", "invalid_request_error")
    model = body["model"]
    mode = state.config.mode_of(model)
    await asyncio.sleep(state.config.latency_ms / 1000 + (state.config.slow_s if mode == "slow" else 0.0))
    if state.failing(model, mode):
        _record(state, body, mode, 500)
        return _error(500, "The server had an error while processing your request.", "server_error")
    _record(state, body, mode, 200)
    # json.dumps escapes what JSONResponse (UTF-8, not ASCII) cannot encode: a lone surrogate.
    completion = _completion(state, model, _message(state, mode, body), body)
    if mode == "shapeless":
        completion["choices"] = "none"
    text = json.dumps(completion)
    text = text.replace(f'"{_DEEP}"', "[" * _DEPTH + "]" * _DEPTH)
    return Response(text, media_type="application/json")


async def _models(request: Request) -> Response:
    state: _State = request.app.state.standin
    data = [{"id": m, "object": "model", "created": 0, "owned_by": "llm-standin"} for m in state.config.modes]
    return JSONResponse({"object": "list", "data": data})


async def _requests(request: Request) -> Response:
    state: _State = request.app.state.standin
    if request.method == "DELETE":
        state.requests.clear()
    return JSONResponse(state.requests)


def create_app(config: StandinConfig) -> Starlette:
    for mode in (config.mode, *config.modes.values()):
        if mode not in MODES:
            raise ValueError(f"unknown mode {mode!r}; one of {', '.join(MODES)}")
    app = Starlette(
        routes=[
            Route("/v1/chat/completions", _chat, methods=["POST"]),
            Route("/v1/models", _models, methods=["GET"]),
            Route("/standin/requests", _requests, methods=["GET", "DELETE"]),
        ]
    )
    app.state.standin = _State(config)
    return app


# ---------------------------------------------------------------- running it


async def serve(config: StandinConfig, host: str = "127.0.0.1", port: int = 0) -> None:
    """Serve until SIGTERM/SIGINT; prints the serving line once it listens."""
    # IPPROTO_TCP named: asyncio sets TCP_NODELAY only on sockets whose proto says TCP, and an
    # accepted socket takes the listener's. With proto 0, Nagle held each answer's body behind
    # its headers until the client's delayed ACK: 44 ms more on every call of a kept connection.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(1024)  # connections queue from here on, before uvicorn accepts
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(config),
            log_level="warning",
            access_log=False,
            lifespan="off",
            timeout_graceful_shutdown=1,
        )
    )
    print(json.dumps({"event": "serving", "host": host, "port": sock.getsockname()[1]}), flush=True)
    await server.serve(sockets=[sock])


def _model_mode(text: str) -> tuple[str, str]:
    model, sep, mode = text.rpartition("=")
    if not sep or not model:
        raise argparse.ArgumentTypeError(f"{text!r} is not MODEL=MODE")
    return model, mode


def _parse(argv: Sequence[str] | None) -> tuple[StandinConfig, str, int]:
    parser = argparse.ArgumentParser(prog="python -m tests.llm_standin", description=__doc__.split("\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--mode", choices=MODES, default="good")
    parser.add_argument("--model", type=_model_mode, action="append", default=[], metavar="NAME=MODE")
    parser.add_argument("--latency-ms", type=float, default=0.0)
    parser.add_argument("--slow-s", type=float, default=5.0)
    parser.add_argument("--api-key", default=None)
    parser.add_argument("--flaky-failures", type=int, default=3)
    args = parser.parse_args(argv)
    config = StandinConfig(
        args.mode, dict(args.model), args.latency_ms, args.slow_s, args.api_key, args.flaky_failures
    )
    return config, args.host, args.port


def main(argv: Sequence[str] | None = None) -> int:
    config, host, port = _parse(argv)
    try:
        asyncio.run(serve(config, host, port))
    except ValueError as exc:
        print(f"llm_standin: {exc}", file=sys.stderr)
        return 2
    return 0


@dataclass
class Standin:
    """A stand-in running as its own process."""

    service: ServiceProcess

    @property
    def base_url(self) -> str:
        return f"http://{self.service.info['host']}:{self.service.port}/v1"

    def stop(self) -> int:
        return self.service.terminate(5.0)


def start_standin(
    mode: str = "good",
    models: Mapping[str, str] | None = None,
    *,
    latency_ms: float = 0.0,
    slow_s: float = 5.0,
    api_key: str | None = None,
    flaky_failures: int = 3,
) -> Standin:
    """Start `python -m tests.llm_standin` on a free port and wait until it serves."""
    args = ["--mode", mode, "--latency-ms", str(latency_ms), "--slow-s", str(slow_s)]
    args += ["--flaky-failures", str(flaky_failures)]
    for model, model_mode in (models or {}).items():
        args += ["--model", f"{model}={model_mode}"]
    if api_key is not None:
        args += ["--api-key", api_key]
    return Standin(start_service(args, module="tests.llm_standin", timeout_s=20.0))


if __name__ == "__main__":
    sys.exit(main())
