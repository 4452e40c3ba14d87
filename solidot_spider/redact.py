"""Credentials out of anything logged: URIs of MongoDB, Redis or HTTP services without secrets."""

from __future__ import annotations

import re

_USERINFO = re.compile(r"([a-z][a-z0-9+.-]*://)[^@/?#\s]*@", re.IGNORECASE)
_SECRET_PARAMETER = re.compile(
    r"([?&](?:[^=&#\s]*(?:password|secret|token)[^=&#\s]*|authMechanismProperties)=)[^&#\s]*",
    re.IGNORECASE,
)


def redact_uri(uri: str) -> str:
    """``uri`` (or any text holding URIs) without user name, password or secret options.

    >>> redact_uri("mongodb://crawler:s3cret@db1:27017,db2/solidot?authSource=admin")
    'mongodb://***@db1:27017,db2/solidot?authSource=admin'
    >>> redact_uri("mongodb+srv://u:p@cluster.example.net/?tlsCertificateKeyFilePassword=x")
    'mongodb+srv://***@cluster.example.net/?tlsCertificateKeyFilePassword=***'
    >>> redact_uri("redis://:secret@redis.internal:6379/0")
    'redis://***@redis.internal:6379/0'
    >>> redact_uri("mongodb://127.0.0.1:27017")
    'mongodb://127.0.0.1:27017'
    """
    return _SECRET_PARAMETER.sub(r"\1***", _USERINFO.sub(r"\1***@", uri))
