"""The advisor's engine core: a signal and its context in, a decision (an execution intent or
a block with reasons) and telemetry events out. Pure: time is given, the LLM's answer comes in
as an event (`AdvisorCore.on_answer`)."""
