"""The advisor's LLM transport: a structured context and a JSON schema in, a typed reply out,
through the `openai` client against any OpenAI-compatible endpoint (vLLM in production).

    config = LlmConfig.from_env()            # None: no endpoint, the synthesis is deterministic
    async with LlmTransport(config) as llm:
        reply = await llm.complete(context, schema, tools=specs, execute=run_mcp_tool)

Modules: config (LlmConfig, Secret), transport (LlmTransport), reply (LlmReply), events
(TransportEvent, TransportEventKind), breaker (CircuitBreaker), tools (ToolSpec, ToolExecutor,
ToolCallRecord), prompt (the request's messages and response_format), failures (openai's
errors mapped into core.foundations.errors).
"""

from core.advisor.llm.breaker import BreakerState, CircuitBreaker
from core.advisor.llm.config import LlmConfig, Secret
from core.advisor.llm.events import TransportEvent, TransportEventKind
from core.advisor.llm.prompt import INSTRUCTIONS
from core.advisor.llm.reply import LlmReply
from core.advisor.llm.tools import ToolCallRecord, ToolExecutor, ToolSpec
from core.advisor.llm.transport import DETERMINISTIC, LlmTransport

__all__ = [
    "DETERMINISTIC",
    "INSTRUCTIONS",
    "BreakerState",
    "CircuitBreaker",
    "LlmConfig",
    "LlmReply",
    "LlmTransport",
    "Secret",
    "ToolCallRecord",
    "ToolExecutor",
    "ToolSpec",
    "TransportEvent",
    "TransportEventKind",
]
