"""The advisor: signals in, decisions and execution intents out (issue 14's 8-stage pipeline).

`engine/` is the pure core (no I/O, no wall clock); `llm/` is the transport to an
OpenAI-compatible endpoint that the service shell uses for the synthesis stage; `training`,
`calibrating` and `synthetic` are the offline library (model training, calibration fitting,
the default model's data).
"""
