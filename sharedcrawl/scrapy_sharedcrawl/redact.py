"""Credentials out of anything logged: URIs of MongoDB, Redis or HTTP services without secrets.

:func:`redact_uri` hides every URI's userinfo (up to its last ``@``, even a password typed without
percent-encoding) and the values of secret query options; it hides too much rather than too little.

Design notes: docs/framework-design.md#redact.
"""

from __future__ import annotations

import re

#: Where a URI starts: ``scheme://``, not inside a longer word.
_URI_START = re.compile(r"(?<![a-z0-9+.-])[a-z][a-z0-9+.-]*://", re.IGNORECASE)
_LINE_END = re.compile(r"[\r\n]")
_SECRET_PARAMETER = re.compile(
    r"([?&;](?:[^=&;#\s]*(?:password|passwd|pwd|secret|token)[^=&;#\s]*|authMechanismProperties)=)"
    r"[^&;#\s]*",
    re.IGNORECASE,
)
MASK = "***"


def _redact_one(uri: str) -> str:
    """One URI (``scheme://`` up to the end of the line or the next URI): userinfo and secret options
    replaced by ``***``."""
    scheme, _, rest = uri.partition("://")
    _, at, hosts_and_more = rest.rpartition("@")
    if at:
        rest = f"{MASK}@{hosts_and_more}"
    return _SECRET_PARAMETER.sub(rf"\1{MASK}", f"{scheme}://{rest}")


def _starts_before(text: str, position: int) -> bool:
    """Whether a URI starts earlier in ``text`` on the same line as ``position``."""
    line_start = max(text.rfind("\n", 0, position), text.rfind("\r", 0, position)) + 1
    return _URI_START.search(text, line_start, position) is not None


def redact_uri(uri: str) -> str:
    """``uri`` (or any text holding URIs) without user name, password or secret options.

    >>> redact_uri("mongodb://crawler:s3cret@db1:27017,db2/archive?authSource=admin")
    'mongodb://***@db1:27017,db2/archive?authSource=admin'
    >>> redact_uri("mongodb+srv://u:p@cluster.example.net/?tlsCertificateKeyFilePassword=x")
    'mongodb+srv://***@cluster.example.net/?tlsCertificateKeyFilePassword=***'
    >>> redact_uri("redis://:pa@ss@redis.internal:6379/0")
    'redis://***@redis.internal:6379/0'
    >>> redact_uri("redis://:ab://cd@h")
    'redis://***@h'
    >>> redact_uri("mongodb://127.0.0.1:27017")
    'mongodb://127.0.0.1:27017'
    """
    starts = [
        match.start()
        for match in _URI_START.finditer(uri)
        if match.start() == 0 or uri[match.start() - 1].isspace() or not _starts_before(uri, match.start())
    ]
    if not starts:
        return uri
    pieces = [uri[: starts[0]]]
    for index, start in enumerate(starts):
        end = starts[index + 1] if index + 1 < len(starts) else len(uri)
        line_end = _LINE_END.search(uri, start, end)
        stop = line_end.start() if line_end else end
        pieces.append(_redact_one(uri[start:stop]))
        pieces.append(uri[stop:end])
    return "".join(pieces)
