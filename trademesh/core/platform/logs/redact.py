"""Credentials out of every line we write: URLs and DSNs shown redacted, secrets scrubbed from text.

A connection string may carry its password in any form the libraries accept:
`scheme://user:PASSWORD@host`, a query parameter (`?password=...`, also `passwd`, `pwd`,
`sslpassword`, `token`, `secret`), or a key=value string (`host=db password=...`). redact_url
shows a URL with each secret as `***`; a value with no scheme (a key=value DSN, `host:port`,
or a password pasted where the URL goes) is shown by its first character alone, as not a URL,
whatever it holds. scrub removes a URL's secrets from any text (a library's error message may
quote them).
"""

from __future__ import annotations

import re
import urllib.parse

__all__ = ["check_http_url", "check_url", "redact_url", "scrub", "secrets_of"]

_SECRET_KEYS = r"password|passwd|pwd|pass|sslpassword|secret|token|api_key|apikey"
# key=value pairs, in a query string or a DSN: the value ends at &, ;, a space or a comma.
_PAIR = re.compile(rf"(?i)(?<![\w-])({_SECRET_KEYS})(\s*=\s*)('(?:[^'\\]|\\.)*'|[^&;\s,]*)")
# The userinfo of anything shaped like scheme://user:secret@host, even where urlsplit fails.
_USERINFO = re.compile(r"://([^/@:\s]*):([^@\s]*)@")
_HIDDEN = "***"


def _masked(value: str) -> str:
    """A value that is not a URL: its first character, no more (the rest may be a secret)."""
    return f"{value[:1]}*** ({len(value)} characters)" if value else value


def _parses(url: str) -> urllib.parse.SplitResult | None:
    try:
        parts = urllib.parse.urlsplit(url)
        for address in parts.netloc.rpartition("@")[2].split(","):  # a cluster's URL names several
            parts._replace(netloc=address).port  # noqa: B018 - raises ValueError for a bad port
    except ValueError:
        return None
    # A unix:// URL names a socket path and no host.
    return parts if parts.scheme and (parts.netloc or parts.path) else None


def redact_url(url: str) -> str:
    """The URL (or key=value DSN) fit for a log line or an error: every secret as ***."""
    if "://" in url:
        parts = _parses(url)
        if parts is None:  # malformed: shown with what looks like a secret hidden, for the fix
            return _PAIR.sub(_hide, _USERINFO.sub(rf"://\1:{_HIDDEN}@", url))
        netloc = parts.netloc
        if parts.password is not None:
            user, _, host = netloc.rpartition("@")
            netloc = f"{user.partition(':')[0]}:{_HIDDEN}@{host}"
        query = _PAIR.sub(_hide, parts.query)
        return (
            f"{parts.scheme}://{netloc}{parts.path}"
            + (f"?{query}" if query else "")
            + (f"#{parts.fragment}" if parts.fragment else "")
        )
    return _masked(url)


def _hide(match: re.Match[str]) -> str:
    return f"{match[1]}{match[2]}{_HIDDEN}"


def secrets_of(url: str) -> list[str]:
    """Every secret value in a URL or DSN, however it is written."""
    found = [m[2] for m in _USERINFO.finditer(url)]
    if "://" not in url and "@" in url:  # user:secret@host without a scheme
        found.append(url.rpartition("@")[0].rpartition(":")[2])
    credentials = url.partition("://")[2].rpartition("@")[0]
    if ":" in credentials:  # up to the last @: a password may hold an unescaped one
        found.append(credentials.partition(":")[2])
    found += [m[3].strip("'") for m in _PAIR.finditer(url)]
    for value in list(found):
        found.append(urllib.parse.unquote(value))
    return [s for s in dict.fromkeys(found) if s]


def scrub(text: str, url: str) -> str:
    """`text` with every secret of `url` replaced by ***."""
    for secret in sorted(secrets_of(url), key=len, reverse=True):
        text = text.replace(secret, _HIDDEN)
    return text.replace(url, redact_url(url)) if url else text


def check_url(url: str, schemes: tuple[str, ...], flag: str) -> str:
    """`url` if it is a URL of one of `schemes`; InvalidArgument naming the flag (redacted) if not."""
    from trademesh.core.platform.errors import InvalidArgument

    parts = _parses(url) if "://" in url else None
    if parts is None or parts.scheme not in schemes:
        wanted = " or ".join(f"{s}://" for s in schemes)
        raise InvalidArgument.field(flag, f"{redact_url(url)} is not a {wanted} URL")
    return url


def check_http_url(url: str, setting: str, *, shown: bool = True) -> str:
    """`url` without a trailing slash if it is an http:// or https:// URL with a host (and a
    port, if any, in 1..65535); InvalidArgument naming the setting, the URL redacted (not at all
    unless `shown`: a variable's URL may hold a secret in its path, as a webhook's does), if not."""
    from trademesh.core.platform.errors import InvalidArgument

    parts = _parses(url) if "://" in url else None
    try:
        port_ok = parts is not None and parts.port != 0
    except ValueError:
        port_ok = False
    if parts is None or parts.scheme not in ("http", "https") or not parts.hostname or not port_ok:
        what = f"{redact_url(url)} is not" if shown else "is not"
        raise InvalidArgument.field(setting, f"{what} an http:// or https:// URL with a host")
    return url.rstrip("/")
