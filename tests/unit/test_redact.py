"""Secrets out of logs and errors (trademesh.core.platform.logs.redact): every credential form the libraries
accept."""

from __future__ import annotations

import pytest

from trademesh.core.platform.errors import InvalidArgument
from trademesh.core.platform.logs.redact import check_url, redact_url, scrub

SECRET = "S3ntinel-pw"

FORMS = [
    f"postgresql://rec:{SECRET}@db:5432/market",
    f"postgresql://rec@db:5432/market?sslmode=require&password={SECRET}",
    f"host=db port=5432 user=rec password={SECRET} dbname=market",
    f"host=db password='{SECRET}' dbname=market",
    f"redis://:{SECRET}@redis:6379/0",
    f"redis://default:{SECRET}@redis:6379/0",
    f"redis://redis:6379/0?password={SECRET}",
    f"rediss://redis:6380?ssl_cert_reqs=none&password={SECRET}",
    f"redis:6379,password={SECRET}",
    f"{SECRET}@redis:6379",
    f"postgresql://rec:{SECRET}@[::1/market",
    f"redis://user:{SECRET}@redis:notaport/0",
    f"unix:///tmp/redis.sock?password={SECRET}",
]


@pytest.mark.parametrize("url", FORMS)
def test_no_form_of_a_password_survives_redaction_or_scrubbing(url: str) -> None:
    assert SECRET not in redact_url(url)
    assert SECRET not in scrub(f"connection to {url} failed: bad password {SECRET}", url)


def test_what_is_not_secret_stays_readable() -> None:
    assert redact_url(f"postgresql://rec:{SECRET}@db:5432/market") == "postgresql://rec:***@db:5432/market"
    assert (
        redact_url(f"redis://redis:6379/0?db=2&password={SECRET}") == "redis://redis:6379/0?db=2&password=***"
    )
    assert redact_url("redis://127.0.0.1:6379/0") == "redis://127.0.0.1:6379/0"
    assert redact_url("unix:///tmp/bus.sock?db=0") == "unix:///tmp/bus.sock?db=0"


def test_a_value_without_a_scheme_shows_its_first_character_alone() -> None:
    """A DSN, a host:port or a password pasted where the URL goes: no part of it past its first
    character may be a secret's (issue 37, item 23)."""
    assert redact_url(f"host=db password={SECRET} dbname=market") == "h*** (42 characters)"
    assert redact_url("localhost:6379") == "l*** (14 characters)"
    assert redact_url(SECRET) == f"S*** ({len(SECRET)} characters)"


def test_a_url_check_names_the_flag_and_shows_the_url_redacted() -> None:
    with pytest.raises(InvalidArgument) as refused:
        check_url(f"mysql://rec:{SECRET}@db/market", ("postgresql", "postgres"), "database-url")
    (violation,) = refused.value.violations
    assert violation.field == "database-url" and SECRET not in violation.description
    assert "is not a postgresql:// or postgres:// URL" in violation.description
    assert check_url("unix:///tmp/r.sock", ("redis", "unix"), "redis-url") == "unix:///tmp/r.sock"
