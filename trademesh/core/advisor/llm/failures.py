"""Errors of the openai client mapped into trademesh.core.platform.errors where they enter our code.

Every message is scrubbed of the API key (a server may echo it, as OpenAI's "Incorrect API key
provided: ..." does) and cut short, so no error or event built from it can leak the key.
"""

from __future__ import annotations

import openai

from trademesh.core.advisor.llm.config import Secret
from trademesh.core.platform.errors import (
    Corrupt,
    DeadlineExceeded,
    FailedPrecondition,
    NotFound,
    PermissionDenied,
    ResourceExhausted,
    TrademeshError,
    Unauthenticated,
    Unavailable,
)

__all__ = ["MESSAGE_CHARS", "clean", "is_retryable", "map_openai_error"]

# How much of an endpoint's error message an event or an error repeats.
MESSAGE_CHARS = 300

_BY_STATUS: dict[int, type[TrademeshError]] = {
    401: Unauthenticated,
    403: PermissionDenied,
    404: NotFound,
    408: DeadlineExceeded,
    429: ResourceExhausted,
}


def clean(text: str, secret: Secret | None) -> str:
    """`text` without the secret, at most MESSAGE_CHARS characters."""
    if secret is not None:
        text = secret.scrub(text)
    return text if len(text) <= MESSAGE_CHARS else text[: MESSAGE_CHARS - 3] + "..."


def _status_error(exc: openai.APIStatusError, model: str, secret: Secret | None) -> TrademeshError:
    status = exc.status_code
    kind = _BY_STATUS.get(status) or (Unavailable if status >= 500 else FailedPrecondition)
    return kind(f"{model}: HTTP {status}: {clean(exc.message, secret)}")


def map_openai_error(exc: BaseException, model: str, secret: Secret | None) -> TrademeshError:
    """The trademesh.core.platform.errors error for what the openai client
    (or the deadline around it) raised."""
    if isinstance(exc, TimeoutError | openai.APITimeoutError):
        return DeadlineExceeded(f"{model}: no answer within the deadline")
    if isinstance(exc, openai.APIStatusError):
        return _status_error(exc, model, secret)
    if isinstance(exc, openai.APIConnectionError):
        return Unavailable(f"{model}: cannot reach the endpoint: {clean(str(exc), secret)}")
    if isinstance(exc, openai.APIResponseValidationError):
        return Corrupt(f"{model}: the answer is not a chat completion: {clean(str(exc), secret)}")
    return Unavailable(f"{model}: {type(exc).__name__}: {clean(str(exc), secret)}")


def is_retryable(error: TrademeshError, retry_timeouts: bool) -> bool:
    """Whether the same model may be asked again: a transient failure (connection, 5xx, 429)."""
    if isinstance(error, DeadlineExceeded):
        return retry_timeouts
    return isinstance(error, Unavailable | ResourceExhausted)
