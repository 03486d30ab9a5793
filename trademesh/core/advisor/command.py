"""`trademesh advisor`: its flags, its config, its app (trademesh.core.platform.service.command); and its
offline tools, `trademesh advisor train` and `trademesh advisor calibrate`
(trademesh.core.advisor.offline)."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import TYPE_CHECKING, Any

from trademesh.core.advisor.config import AdvisorServiceConfig
from trademesh.core.advisor.gather_config import GatherConfig
from trademesh.core.advisor.llm.config import LlmConfig
from trademesh.core.platform.config.env import ADVISOR_SIGNING_KEY
from trademesh.core.platform.config.flags import add_flags, flag_values
from trademesh.core.platform.config.mesh import add_mesh_arguments, venue_args
from trademesh.core.platform.service.command import (
    MeshView,
    ServiceCommand,
    add_redis_argument,
    positive_int,
)

if TYPE_CHECKING:
    from trademesh.core.platform.service.lifecycle import ServiceApp

__all__ = ["COMMAND", "DEFAULT_MODEL_DIR"]

# Where `trademesh advisor train` writes models and the advisor looks for them (beside
# `trademesh up`'s data).
DEFAULT_MODEL_DIR = Path(".trademesh") / "advisor"


def _decimal(text: str) -> Decimal:
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise argparse.ArgumentTypeError(f"{text!r} is not a decimal") from None
    if not value.is_finite() or value < 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a decimal of 0 or more")
    return value


def _share(text: str) -> Decimal:
    """A share of equity: above 0, at most all of it."""
    value = _decimal(text)
    if not 0 < value <= 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a share of equity in (0, 1] (0.01 is 1%)")
    return value


def _time(text: str) -> int:
    from trademesh.core.advisor.times import parse_time

    try:
        return parse_time(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _timeframe(text: str) -> str:
    from trademesh.core.domain.model import TIMEFRAME_LABELS

    if text not in TIMEFRAME_LABELS:
        raise argparse.ArgumentTypeError(f"{text!r} is not a timeframe; known: {', '.join(TIMEFRAME_LABELS)}")
    return text


def _consumer(text: str) -> str:
    from trademesh.core.advisor.config import consumer_problem

    if (problem := consumer_problem(text)) is not None:
        raise argparse.ArgumentTypeError(problem)
    return text


def _add_arguments(parser: argparse.ArgumentParser) -> None:
    add_redis_argument(parser)
    add_mesh_arguments(parser)
    parser.add_argument("--database-url", help="the recorder's database (default: $DATABASE_URL)")
    add_flags(parser, AdvisorServiceConfig)
    parser.add_argument(
        "--consumer",
        type=_consumer,
        help="this replica's name in the consumer group on signals, its own per replica and stable "
        "across its restarts (default: <instance>-<host>; docs/advisor.md, Replicas)",
    )
    parser.add_argument("--config", type=Path, help="the pipeline's settings (TOML; docs/advisor.md)")
    parser.add_argument(
        "--max-spread-ratio", type=_decimal, help="block a spread above this (0.004 is 0.4%%; default 0.004)"
    )
    parser.add_argument(
        "--min-risk-reward", type=_decimal, help="block a risk/reward below this (default 1.2)"
    )
    parser.add_argument(
        "--max-notional-share", type=_share,
        help="size an intent at most this share of equity (0.01 is 1%%; default 0.25)",
    )  # fmt: skip
    parser.add_argument(
        "--timeframe",
        type=_timeframe,
        help="the context's bars (default: the model's timeframe; 1m without --model); the model must "
        "have been trained on them (shipped: 1s, 1m)",
    )
    add_flags(parser, GatherConfig)
    parser.add_argument(
        "--model-dir",
        type=Path,
        default=DEFAULT_MODEL_DIR,
        help=f"trained models (default {DEFAULT_MODEL_DIR})",
    )
    parser.add_argument("--llm-base-url", help="OpenAI-compatible endpoint (default $TRADEMESH_LLM_BASE_URL)")
    parser.add_argument("--llm-models", help="models, primary first, comma-separated ($TRADEMESH_LLM_MODELS)")
    add_flags(parser, LlmConfig)
    parser.add_argument(
        "--deadline-ms", type=positive_int, help="a decision waits this long for the LLM (default 5000)"
    )


def _llm(args: argparse.Namespace, deadline_ms: int) -> Any:
    models = (
        None if args.llm_models is None else tuple(m.strip() for m in args.llm_models.split(",") if m.strip())
    )
    return LlmConfig.from_env(
        args.llm_base_url,
        models,
        budget_s=deadline_ms / 1000,
        **flag_values(args, LlmConfig),
    )


def _config(args: argparse.Namespace) -> AdvisorServiceConfig:
    from trademesh.core.advisor.config import load_engine_config, with_overrides
    from trademesh.core.platform.config.env import GATEWAY, database_url, read_secret, redis_url
    from trademesh.core.platform.config.mesh import mesh_config_from_args

    engine = with_overrides(
        load_engine_config(args.config),
        validation__max_spread_ratio=args.max_spread_ratio,
        validation__min_risk_reward=args.min_risk_reward,
        synthesis__deadline_ms=args.deadline_ms,
        sizing__max_notional_share=args.max_notional_share,
    )
    return AdvisorServiceConfig(
        redis_url=redis_url(args.redis_url),
        database_url=database_url(args.database_url),
        engine=engine,
        mesh=mesh_config_from_args(args),
        gateway=read_secret(GATEWAY),
        gather=GatherConfig(timeframe=args.timeframe or "", **flag_values(args, GatherConfig)),
        model_dir=args.model_dir,
        llm=_llm(args, engine.synthesis.deadline_ms),
        llm_tools=args.llm_max_tool_calls > 0,
        consumer=args.consumer or "",
        **flag_values(args, AdvisorServiceConfig),
    )


def _create(config: AdvisorServiceConfig) -> ServiceApp:
    from trademesh.core.advisor.app import Advisor

    return Advisor(config)


def _mesh_args(mesh: MeshView) -> list[str]:
    # The context on 1m bars (and the shipped 1m model: a model serves only its own timeframe):
    # the example strategies' entries come from 1s bars, their stops and targets from 1m bars'
    # ATR, minutes from the entry, where the demo market's moves pay a round trip's fees (on 1s
    # bars they never do). A fresh mesh has them at once: the bar service backfills them from the
    # sim's history. The sim's demo account holds 1,000,000 USDT: at 0.8% of it an intent (8,000
    # USDT) stays within the inspector's default policies (10,000 per order, 20,000 per
    # position), so the local mesh trades.
    from trademesh.core.advisor.config import MESH_MAX_NOTIONAL_SHARE, MESH_TIMEFRAME

    share = str(MESH_MAX_NOTIONAL_SHARE)
    return [*venue_args(mesh.venues), "--timeframe", MESH_TIMEFRAME, "--max-notional-share", share]


# ---------------------------------------------------------------- train, calibrate


def _add_data_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--venue", required=True, help="the venue whose recorded bars to use (e.g. sim)")
    parser.add_argument("--symbol", required=True, help="its canonical symbol (e.g. BTC/USDT)")
    parser.add_argument("--since", type=_time, required=True, help="from (ISO 8601, ns, or 7d / 12h ago)")
    parser.add_argument("--until", type=_time, help="until (default: now)")
    parser.add_argument("--timeframe", type=_timeframe, default="1m", help="the bars' timeframe (default 1m)")
    parser.add_argument("--database-url", help="the recorder's database (default: $DATABASE_URL)")
    parser.add_argument(
        "--out", type=Path, default=DEFAULT_MODEL_DIR, help=f"where to write (default {DEFAULT_MODEL_DIR})"
    )


def _window(args: argparse.Namespace) -> tuple[str, str, int, int]:
    import time

    from trademesh.core.platform.bus.names import venue_name
    from trademesh.core.platform.errors import InvalidArgument
    from trademesh.core.tools.inputs import canonical_symbol

    venue, symbol = venue_name(args.venue), canonical_symbol(args.symbol)
    until = time.time_ns() if args.until is None else args.until
    if until <= args.since:
        raise InvalidArgument.field("until", "must be after --since")
    return venue, symbol, args.since, until


def _run(work: Callable[[], Any]) -> None:
    import asyncio

    for line in asyncio.run(work()):
        print(line)


def _train(args: argparse.Namespace) -> None:
    from trademesh.core.advisor.offline import TrainRequest, run_train
    from trademesh.core.domain.model import Timeframe
    from trademesh.core.platform.config.env import database_url

    venue, symbol, since, until = _window(args)
    request = TrainRequest(
        database_url(args.database_url), venue, symbol, Timeframe.from_label(args.timeframe), since, until,
        args.out, horizon=args.horizon, folds=args.folds,
    )  # fmt: skip
    _run(lambda: run_train(request))


def _calibrate(args: argparse.Namespace) -> None:
    from trademesh.core.advisor.offline import CalibrateRequest, run_calibrate
    from trademesh.core.domain.model import Timeframe
    from trademesh.core.platform.config.env import database_url

    venue, symbol, since, until = _window(args)
    request = CalibrateRequest(
        database_url(args.database_url), venue, symbol, Timeframe.from_label(args.timeframe), since, until,
        args.out, model=args.model, model_dir=args.model_dir, name=args.name,
    )  # fmt: skip
    _run(lambda: run_calibrate(request))


def _add_subcommands(commands: Any) -> None:
    train = commands.add_parser(
        "train", help="train the evaluation model on recorded bars (walk-forward; a versioned artifact)"
    )
    _add_data_arguments(train)
    train.add_argument("--horizon", type=positive_int, default=5, help="label: the close this many bars on")
    train.add_argument("--folds", type=positive_int, default=5, help="walk-forward folds (default 5)")
    train.set_defaults(run=_train)
    calibrate = commands.add_parser(
        "calibrate", help="fit the calibration per regime on recorded bars; a reliability table and PNG"
    )
    _add_data_arguments(calibrate)
    calibrate.add_argument("--model", help="the model version or .model.json path (default: the shipped one)")
    calibrate.add_argument("--model-dir", type=Path, default=DEFAULT_MODEL_DIR, help="where the models are")
    calibrate.add_argument("--name", default="", help="the files' name (default: venue-symbol-timeframe)")
    calibrate.set_defaults(run=_calibrate)


COMMAND: ServiceCommand[AdvisorServiceConfig] = ServiceCommand(
    config=_config,
    create=_create,
    add_arguments=_add_arguments,
    mesh_args=_mesh_args,
    add_subcommands=_add_subcommands,
    # Its key signs the intents it writes: the inspector trades only those (docs/bus.md).
    holds=(ADVISOR_SIGNING_KEY,),
    settings=(AdvisorServiceConfig, GatherConfig, LlmConfig),
)
