"""The AI Supervisor (issue 42): watches every strategy's performance, the regimes and the risk
state, and proposes or takes bounded actions (pause, resume, a capital share, a tighter
policy). Its engine (trademesh.core.supervisor.engine) is a pure core; docs/supervisor.md."""
