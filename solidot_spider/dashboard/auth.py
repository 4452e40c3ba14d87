"""Who may read the dashboard: anyone on loopback, the token's holders beyond it.

The token (``SOLIDOT_DASHBOARD_TOKEN``, from the environment: never on the
command line, where ``ps`` shows it) is accepted as ``Authorization: Bearer
<token>`` (scripts, Prometheus' ``authorization``), as the password of HTTP
Basic auth (any user name: browsers, Prometheus' ``basic_auth``), or from the
cookie a first visit with ``?token=`` sets (a link an operator can open). A
dashboard bound beyond loopback without a token refuses to start.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hmac
import ipaddress

COOKIE = "solidot_dashboard_token"
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
        raise ValueError(f"SOLIDOT_DASHBOARD_TOKEN must be at least {MIN_TOKEN} characters")
    if not token and not is_loopback(host):
        raise ValueError(
            f"refusing to serve the dashboard on {host} without a token: set SOLIDOT_DASHBOARD_TOKEN in the "
            "environment (e.g. `python -c 'import secrets; print(secrets.token_urlsafe(24))'`)"
        )


def presented(authorization: str, cookie: str, query: str) -> list[str]:
    """Every token a request presents: bearer, basic password, cookie, ``?token=``."""
    tokens = [cookie, query]
    scheme, _, value = authorization.partition(" ")
    if scheme.lower() == "bearer":
        tokens.append(value.strip())
    elif scheme.lower() == "basic":
        with contextlib.suppress(binascii.Error, UnicodeDecodeError):
            tokens.append(base64.b64decode(value.strip(), validate=True).decode().partition(":")[2])
    return [token for token in tokens if token]


def allowed(token: str, candidates: list[str]) -> bool:
    """Whether one of ``candidates`` is ``token`` (compared in constant time); no token: everyone."""
    if not token:
        return True
    return any(hmac.compare_digest(candidate.encode(), token.encode()) for candidate in candidates)
