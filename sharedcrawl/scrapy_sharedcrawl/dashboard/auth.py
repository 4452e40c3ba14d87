"""Who may read the dashboard: anyone on loopback, the token's holders beyond it.

The token (``DASHBOARD_TOKEN``, or ``SHAREDCRAWL_DASHBOARD_TOKEN`` from the environment: never on the
command line, where ``ps`` shows it) is accepted as ``Authorization: Bearer
<token>`` (scripts, Prometheus' ``authorization``), as the password of HTTP
Basic auth (any user name: browsers, Prometheus' ``basic_auth``), or from the
cookie a first visit with ``?token=`` sets (a link an operator can open; the
cookie holds a digest of the token, not the token). A dashboard bound beyond
loopback without a token refuses to start; without a token it answers only
requests addressed to a loopback name (DNS rebinding).
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import hmac
import ipaddress

COOKIE = "sharedcrawl_dashboard_token"
#: Shortest token accepted (a guessable token is no protection).
MIN_TOKEN = 16


def is_loopback(host: str) -> bool:
    """Whether binding ``host`` keeps the server on this machine (``localhost``, 127.0.0.0/8, ::1)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a host name: it may resolve anywhere


def check_token(host: str, token: str) -> None:
    """Refuse (ValueError) a bind beyond loopback without a token, or with a short one."""
    if token and len(token) < MIN_TOKEN:
        raise ValueError(f"the dashboard token must be at least {MIN_TOKEN} characters")
    if not token and not is_loopback(host):
        raise ValueError(
            f"refusing to serve the dashboard on {host} without a token: set SHAREDCRAWL_DASHBOARD_TOKEN in "
            "the environment (e.g. `python -c 'import secrets; print(secrets.token_urlsafe(24))'`)"
        )


def presented(authorization: str, query: str) -> list[str]:
    """Every token a request presents: bearer, basic password, ``?token=`` (the cookie holds none:
    see :func:`cookie_value`)."""
    tokens = [query]
    scheme, _, value = authorization.partition(" ")
    if scheme.lower() == "bearer":
        tokens.append(value.strip())
    elif scheme.lower() == "basic":
        with contextlib.suppress(binascii.Error, UnicodeError, ValueError):
            tokens.append(base64.b64decode(value.strip(), validate=True).decode().partition(":")[2])
    return [token for token in tokens if token]


def allowed(token: str, candidates: list[str], cookie: str = "") -> bool:
    """Whether one of ``candidates`` is ``token``, or ``cookie`` the one :func:`cookie_value` gives for
    it (compared in constant time); no token: everyone.

    Candidates are whatever a client sent: any text (bytes that are not UTF-8 reach here as
    surrogates) is compared as bytes, never raises, and matches only the token itself.
    """
    if not token:
        return True
    expected = token.encode()
    matches = [hmac.compare_digest(_raw(candidate), expected) for candidate in candidates]
    if cookie:
        matches.append(hmac.compare_digest(_raw(cookie), cookie_value(token).encode()))
    return any(matches)


def cookie_value(token: str) -> str:
    """What the cookie holds for ``token``: a keyed digest, not the token (a leaked cookie, in a
    browser profile or a proxy's log, gives no Bearer or ``?token=`` access and ends with the token)."""
    return hmac.new(token.encode(), b"sharedcrawl dashboard cookie v1", hashlib.sha256).hexdigest()


def _raw(text: str) -> bytes:
    """``text`` as bytes for any ``str`` (surrogates too: undecodable bytes arrive as such), never raising."""
    return text.encode("utf-8", "surrogatepass")


def loopback_host(host_header: str) -> bool:
    """Whether a ``Host:`` header names this machine's loopback: ``localhost`` (and ``*.localhost``),
    127.0.0.0/8 or ``[::1]``, with or without a port. A dashboard without a token answers only these:
    else a site whose name an attacker points at 127.0.0.1 could read it from the operator's browser
    (DNS rebinding)."""
    host = host_header.strip().lower()
    if host.startswith("["):  # [v6]:port
        host, bracket, _ = host[1:].partition("]")
        if not bracket:
            return False
    elif host.count(":") == 1:
        host, _, port = host.partition(":")
        if not port.isdigit():
            return False
    host = host.rstrip(".")
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
