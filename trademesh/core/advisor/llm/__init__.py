"""The advisor's LLM transport: a structured context and a JSON schema in, a typed reply out,
through the `openai` client against any OpenAI-compatible endpoint (vLLM in production).

    config = LlmConfig.from_env()            # None: no endpoint, the synthesis is deterministic
    async with LlmTransport(config) as llm:
        reply = await llm.complete(context, schema, tools=specs, execute=run_mcp_tool)

Modules: config (LlmConfig, Secret), transport (LlmTransport), reply (LlmReply), events
(TransportEvent, TransportEventKind), breaker (CircuitBreaker), tools (ToolSpec, ToolExecutor,
ToolCallRecord), prompt (the request's messages and response_format), failures (openai's
errors mapped into trademesh.core.platform.errors).

The package imports none of them: the advisor's config (and a backtest's) reads LlmConfig
without loading the openai client.
"""
