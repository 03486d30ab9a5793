"""Every environment variable trademesh reads, in one place.

Secrets come only from the environment; they are never logged, put in an error
or returned by an API.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from typing import TypeVar

from trademesh.core.platform.errors import InvalidArgument
from trademesh.core.platform.logs.redact import check_url, redact_url

__all__ = [
    "ADVERTISE_HOST",
    "ADVISOR_SIGNING_KEY",
    "ALERTMANAGER_URL",
    "BUS_DIRECT",
    "DATABASE_SCHEMES",
    "DATABASE_URL",
    "DETECTOR_SIGNING_KEY",
    "DRAIN_DELAY_S",
    "GATEWAY",
    "LEASE_HOLDER",
    "LLM_API_KEY",
    "LLM_BASE_URL",
    "LLM_MODELS",
    "LOG_FORMAT",
    "LOG_LEVEL",
    "NOTIFY_WEBHOOK_URL",
    "PAPER",
    "REDIS_SCHEMES",
    "REDIS_URL",
    "SESSION_SECRET",
    "SUPERVISOR_API_KEY",
    "TELEGRAM_API_KEY",
    "TELEGRAM_BASE_URL",
    "TELEGRAM_BOT_TOKEN",
    "TELEGRAM_CHAT_ID",
    "TELEGRAM_COMMAND_CHAT_IDS",
    "TOKEN",
    "TRADE_TOKEN",
    "VENUE_CREDENTIALS",
    "VENUE_SANDBOX",
    "VENUE_TRADE_TOKEN",
    "account_trade_tokens",
    "bounded_number",
    "bus_direct_mode",
    "chat_id",
    "database_url",
    "drain_delay_s",
    "notice_chat",
    "paper_mode",
    "read_secret",
    "redact_url",
    "redis_url",
    "setting_of",
    "token_secret",
    "trade_token_variable",
    "venue_variable",
]

N = TypeVar("N", int, float)

# Log level of every process (DEBUG, INFO, WARNING, ...); INFO when unset.
LOG_LEVEL = "TRADEMESH_LOG_LEVEL"
# Log line format of every process: text (default) or json (trademesh.core.platform.logs.setup).
LOG_FORMAT = "TRADEMESH_LOG_FORMAT"

# Bearer token that services require on every RPC but health and reflection.
# Unset or empty: auth is off (the service logs a loud warning at start).
TOKEN = "TRADEMESH_TOKEN"

# The trading credential: the bearer token a venue requires on the RPCs that place or cancel
# orders (PlaceOrder, CancelOrder, CancelAllOrders) and arm its dead-man switch (Heartbeat); it
# is good for every other RPC too. Only the inspector and the venues hold it; every other caller
# (the gateway, Studio, ops tools, agents, the other services) holds the mesh token alone and is
# refused those RPCs (PERMISSION_DENIED). Unset on a venue: the venue refuses them all while
# TRADEMESH_TOKEN is set (fail closed), and keeps them open only when auth is off (dev mode).
TRADE_TOKEN = "TRADEMESH_TRADE_TOKEN"

# The keys that sign what is written to the trading streams (trademesh.core.platform.bus.signing): the
# inspector acts on an entry of `intents.{signals}` only when the advisor's key signed it, on one
# of `position_requests.{signals}` only when the detector's did; anything else on those streams
# (unsigned, or signed by another key) is refused, counted and reported. Each writer holds its
# own key, the inspector both; no other service holds either (32+ characters of entropy; `trademesh
# up` makes them). Unset on the inspector: it refuses that writer's entries.
ADVISOR_SIGNING_KEY = "TRADEMESH_ADVISOR_SIGNING_KEY"
DETECTOR_SIGNING_KEY = "TRADEMESH_DETECTOR_SIGNING_KEY"

# The gateway's gRPC address (host:port) where services register, heartbeat and unregister.
# Unset: a service does not register (it still serves).
GATEWAY = "TRADEMESH_GATEWAY"

# The host other services reach this one at, sent when it registers with the gateway (a
# container's service name, e.g. venue-sim). Unset: the --host it binds, or the machine's
# hostname when that is a wildcard (0.0.0.0, ::).
ADVERTISE_HOST = "TRADEMESH_ADVERTISE_HOST"

# A process's name as a lease holder (trademesh.core.platform.replicas.lease), the same across
# its restarts: set by a supervisor that starts a process again only after the last one exited
# (`trademesh up`), so a restarted process takes its own leases back at once instead of waiting
# out their ttl (a restarted inspector protects its positions within a second, as before
# leases). Never the same for two live processes: each holds what the other holds. Unset: a
# holder unique to the process.
LEASE_HOLDER = "TRADEMESH_LEASE_HOLDER"

# After SIGTERM, how long a service says NOT_SERVING (so load balancers stop sending calls)
# before it stops taking them, in seconds (0..60; default 0.5). The test suite sets 0: nothing
# balances its processes, and hundreds of them stop in a run.
DRAIN_DELAY_S = "TRADEMESH_DRAIN_DELAY_S"
_DEFAULT_DRAIN_DELAY_S = 0.5
_MAX_DRAIN_DELAY_S = 60.0

# "1": a live venue paper-trades (`trademesh venue NAME` as with --paper: docs/paper.md), how
# docker compose turns every live venue's container to paper at once; "0" or unset: it does not.
PAPER = "TRADEMESH_PAPER"
# "1": a venue writes its own market data and executions to the bus ($REDIS_URL), as
# `trademesh venue NAME --bus-direct` (compose and Kubernetes set it; docs/bus.md, "The direct path").
BUS_DIRECT = "TRADEMESH_BUS_DIRECT"


def bus_direct_mode(default: bool = False) -> bool:
    """$TRADEMESH_BUS_DIRECT: "1" on, "0" off, unset `default`; InvalidArgument naming the
    variable else."""
    return _switch(BUS_DIRECT, default, "direct")


def paper_mode() -> bool:
    """$TRADEMESH_PAPER: "1" on, "0" or unset off; InvalidArgument naming the variable else."""
    return _switch(PAPER, False, "paper")


def _switch(variable: str, default: bool, meaning: str) -> bool:
    """$`variable`: "1" on, "0" off, unset `default`; InvalidArgument naming the variable else."""
    text = os.environ.get(variable, "").strip()
    if text not in ("", "0", "1"):
        raise InvalidArgument.field(variable, f"{text[:32]!r} is not 1 ({meaning}) or 0 (not)")
    return default if text == "" else text == "1"


# The key that signs Studio's session tokens (any string, 32+ bytes of entropy). Unset: the
# gateway makes one per process, so sessions end when it restarts.
SESSION_SECRET = "TRADEMESH_SESSION_SECRET"

# The advisor's LLM endpoint (any OpenAI-compatible server; vLLM in production): its base URL
# (e.g. http://vllm:8000/v1; unset: no endpoint, the synthesis is deterministic), the models to
# try in order (comma-separated: primary, then fallbacks) and the API key, a secret: never
# logged, echoed in an error or returned (trademesh.core.advisor.llm.config.Secret holds it).
LLM_BASE_URL = "TRADEMESH_LLM_BASE_URL"
LLM_MODELS = "TRADEMESH_LLM_MODELS"
LLM_API_KEY = "TRADEMESH_LLM_API_KEY"

# Where the inspector sends the risk events an operator must hear of at once (a legacy position
# found, a stand-down, CLOSE_ALL, a reconciliation divergence): a webhook (JSON POSTed to the
# URL) and/or a Telegram chat through the Bot API (the bot's token is a secret: never logged;
# the base URL is configurable for a proxy or a test stand-in). Unset: no notification.
NOTIFY_WEBHOOK_URL = "TRADEMESH_NOTIFY_WEBHOOK_URL"
TELEGRAM_BOT_TOKEN = "TRADEMESH_TELEGRAM_BOT_TOKEN"
TELEGRAM_CHAT_ID = "TRADEMESH_TELEGRAM_CHAT_ID"
TELEGRAM_BASE_URL = "TRADEMESH_TELEGRAM_BASE_URL"
# The operators' commands (`trademesh telegram`, docs/telegram.md): the chats whose commands are
# answered (comma-separated ids; unset: the notices' chat) and the bot's own API key (a secret).
TELEGRAM_COMMAND_CHAT_IDS = "TRADEMESH_TELEGRAM_COMMAND_CHAT_IDS"
TELEGRAM_API_KEY = "TRADEMESH_TELEGRAM_API_KEY"
# The Supervisor's own API key (docs/supervisor.md): it reads and acts through the gateway's
# tools with it, what its scope allows and no more. A secret.
SUPERVISOR_API_KEY = "TRADEMESH_SUPERVISOR_API_KEY"


# The Alertmanager whose firing alerts the gateway's services board shows (its base URL, e.g.
# http://alertmanager:9093; the gateway's --alertmanager-url wins). Unset or empty: none.
ALERTMANAGER_URL = "TRADEMESH_ALERTMANAGER_URL"

# The bus and the database of the mesh services (a --redis-url / --database-url flag wins).
# They may hold passwords: log them only through redact_url.
REDIS_URL = "REDIS_URL"
DATABASE_URL = "DATABASE_URL"
_DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"
# redis+cluster://host:port[,host:port ...] (rediss+cluster:// with TLS): a Redis Cluster, found
# from any of the nodes named (trademesh.core.platform.bus.redis; only database 0 there).
REDIS_SCHEMES = ("redis", "rediss", "unix", "redis+cluster", "rediss+cluster")
DATABASE_SCHEMES = ("postgresql", "postgres")  # asyncpg takes no other form
_DEFAULT_DATABASE_URL = "postgresql://postgres@127.0.0.1:5432/postgres"


def read_secret(name: str) -> str | None:
    value = os.environ.get(name, "")
    return value if value != "" else None


def drain_delay_s() -> float:
    """$TRADEMESH_DRAIN_DELAY_S, else 0.5; InvalidArgument naming the variable if it is not a
    number of seconds in 0..60."""
    return bounded_number(
        DRAIN_DELAY_S, float, _DEFAULT_DRAIN_DELAY_S, (0.0, _MAX_DRAIN_DELAY_S), "a number of seconds"
    )


def bounded_number(variable: str, parse: Callable[[str], N], default: N, bounds: tuple[N, N], what: str) -> N:
    """$`variable` read by `parse` (int or float), `default` when unset or blank; InvalidArgument
    naming the variable for a value outside `bounds` or not a number: "'<text>' is not <what> in
    <low>..<high>"."""
    text = os.environ.get(variable, "").strip()
    if text == "":
        return default
    low, high = bounds
    try:
        value: N | None = parse(text)
    except ValueError:
        value = None
    if value is None or not low <= value <= high:
        raise InvalidArgument.field(variable, f"{text[:32]!r} is not {what} in {_shown(low)}..{_shown(high)}")
    return value


def _shown(bound: float) -> str:
    """A bound as the error writes it: 60.0 as 60, 100000000 as such (not 1e+08)."""
    return f"{bound:g}" if isinstance(bound, float) else str(bound)


def setting_of(value: str, variable: str, flag: str) -> str:
    """The setting a value came from, for an error naming it: `variable` when the environment
    holds that value, else the command-line `flag` (its name without dashes, as errors give it)."""
    return variable if read_secret(variable) == value else flag


def redis_url(flag: str | None = None) -> str:
    """--redis-url, else $REDIS_URL, else the local default; InvalidArgument if not a Redis URL."""
    url = flag or read_secret(REDIS_URL) or _DEFAULT_REDIS_URL
    return check_url(url, REDIS_SCHEMES, "redis-url" if flag else REDIS_URL)


def database_url(flag: str | None = None) -> str:
    """--database-url, else $DATABASE_URL, else the local default; InvalidArgument if not a
    postgresql:// URL (asyncpg takes no other form)."""
    url = flag or read_secret(DATABASE_URL) or _DEFAULT_DATABASE_URL
    return check_url(url, DATABASE_SCHEMES, "database-url" if flag else DATABASE_URL)


# Live venue credentials: TRADEMESH_<VENUE>_<FIELD>, VENUE upper-cased with "-" as "_" and an
# account's "." as "__" (e.g. TRADEMESH_BINANCE_API_KEY, TRADEMESH_OKX_SWAP_PASSPHRASE, and for the
# account desk-a at Binance, venue binance.desk-a: TRADEMESH_BINANCE__DESK_A_API_KEY; docs/accounts.md).
# FIELD -> the ccxt attribute it sets.
# Without credentials a live venue streams market data and refuses TradeFlow calls.
VENUE_CREDENTIALS = {
    "API_KEY": "apiKey",
    "API_SECRET": "secret",
    "PASSPHRASE": "password",  # OKX; Coinbase's legacy keys
}
# TRADEMESH_<VENUE>_SANDBOX=1 talks to the venue's testnet/sandbox where it has one.
VENUE_SANDBOX = "SANDBOX"
# An account's own trading credential (TRADEMESH_<VENUE>_TRADE_TOKEN, e.g.
# TRADEMESH_SIM__DESK_A_TRADE_TOKEN): set, the account's venue takes it instead of
# TRADEMESH_TRADE_TOKEN, and the inspector sends it to that venue alone (docs/accounts.md).
VENUE_TRADE_TOKEN = "TRADE_TOKEN"


def venue_variable(venue: str, field: str) -> str:
    return f"TRADEMESH_{venue.upper().replace('-', '_').replace('.', '__')}_{field}"


# The variables of the accounts' own trading credentials (venue_variable(<exchange>.<account>,
# VENUE_TRADE_TOKEN)): secrets that go where TRADEMESH_TRADE_TOKEN goes, and nowhere else.
_ACCOUNT_TRADE_TOKEN = re.compile(rf"TRADEMESH_[A-Z0-9_]+__[A-Z0-9_]+_{VENUE_TRADE_TOKEN}")


def account_trade_tokens() -> dict[str, str]:
    """Every account's own trading credential set in this environment, by variable."""
    return {
        name: value for name, value in os.environ.items() if value and _ACCOUNT_TRADE_TOKEN.fullmatch(name)
    }


def trade_token_variable(venue: str) -> str:
    """The variable of the trading credential that `venue` takes: its account's own when that
    is set, else TRADEMESH_TRADE_TOKEN (a venue without an account always takes that one)."""
    own = venue_variable(venue, VENUE_TRADE_TOKEN)
    return own if "." in venue and read_secret(own) is not None else TRADE_TOKEN


# A Telegram chat id: a whole number, negative for a group (-1001234567890), within the Bot
# API's 52 bits. ASCII digits only: Python's int() also takes "1_000", "+5" and other scripts'
# digits, which no chat id is written as.
_CHAT_ID = re.compile(r"-?[1-9][0-9]{0,15}")
# A public channel's or group's @username, which the Bot API takes as a chat for sendMessage.
_CHAT_USERNAME = re.compile(r"@[A-Za-z][A-Za-z0-9_]{4,31}")


def chat_id(text: str, setting: str) -> int:
    """A Telegram chat id; InvalidArgument naming the setting (and the value's start) if not one."""
    if not _CHAT_ID.fullmatch(text):
        raise InvalidArgument.field(
            setting, f"{text[:32]!r} is not a chat id (a whole number, e.g. -1001234567890)"
        )
    return int(text)


def notice_chat(text: str, setting: str) -> str:
    """The notices' chat: a chat id or a channel's @username; InvalidArgument naming the setting."""
    if _CHAT_USERNAME.fullmatch(text):
        return text
    return str(chat_id(text, setting))


# A bearer token as gRPC metadata carries it: printable ASCII, no space. A token read from a
# file with its trailing newline is refused at start rather than stripped: every side (the
# gateway, each service, `buf curl` by hand) would have to strip it alike, and one that did not
# would fail each call with a traceback from inside gRPC (docs/limits.md, Secrets).
_TOKEN = re.compile(r"[!-~]+")


def token_secret(name: str) -> str | None:
    """The token in variable `name` (None when unset); InvalidArgument naming the variable, never
    its value, when it holds whitespace or a character a gRPC header cannot carry."""
    value = read_secret(name)
    if value is not None and not _TOKEN.fullmatch(value):
        raise InvalidArgument.field(
            name,
            "holds whitespace or a character an authorization header cannot carry (a trailing "
            "newline from a file?): a token is printable ASCII without spaces",
        )
    return value
