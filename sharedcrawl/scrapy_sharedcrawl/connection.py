"""Redis clients for the scheduler, and how it rides out Redis going away.

scrapy-redis's client defaults (30 s socket timeouts, redis-py's own retries
with sleeps) are fine in a thread but not on Scrapy's reactor thread, where
the scheduler must answer the engine synchronously: here a call fails within
``REDIS_SOCKET_TIMEOUT`` seconds and is never retried inside redis-py; the
scheduler decides what to do (hold requests locally, back off, probe).
"""

from __future__ import annotations

import logging
import re
from typing import Any

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry
from scrapy.settings import BaseSettings
from scrapy_redis import connection as stock_connection
from scrapy_redis import defaults as stock_defaults

from scrapy_sharedcrawl.config import SettingError, int_setting
from scrapy_sharedcrawl.defaults import SETTINGS as DEFAULTS
from scrapy_sharedcrawl.outage import Outage
from scrapy_sharedcrawl.redact import redact_uri
from scrapy_sharedcrawl.sentinel import MasterNotFoundError, sentinel_client, sentinel_config, url_params

logger = logging.getLogger(__name__)

#: Longest a Redis call may block the reactor (connect, or wait for a reply), in seconds.
DEFAULT_SOCKET_TIMEOUT = 5.0
DEFAULT_CONNECT_TIMEOUT = 2.0

#: Every failure of a Redis call the scheduler holds its requests through and retries, as an
#: outage: the server gone (connection errors, timeouts, LOADING), and errors the server answers
#: while it can't take the crawl's commands: OOM under ``noeviction``, BUSY, NOPERM, READONLY,
#: MOVED/ASK or CLUSTERDOWN, MASTERDOWN. Each holds for a while or until an operator acts;
#: none of them may cost the requests a worker holds (:func:`redis_trouble` names the cause).
UNREACHABLE: tuple[type[Exception], ...] = (redis.RedisError,)

#: What an operator should do about a refusal, by the error's first word.
_ADVICE = {
    "OOM": "Redis is full: raise maxmemory (the crawl's keys must never be evicted: keep "
    "maxmemory-policy noeviction)",
    "BUSY": "Redis is busy running a script: wait, or SCRIPT KILL it",
    "NOPERM": "the Redis user lacks a permission the crawl needs: grant it (ACL)",
    "NOAUTH": "Redis wants a password: put it in REDIS_URL",
    "WRONGPASS": "Redis refused the password in REDIS_URL",
    "READONLY": "REDIS_URL points at a read-only replica: point it at the primary",
    "MOVED": "REDIS_URL points at a Redis Cluster node: the crawl needs a standalone Redis",
    "ASK": "REDIS_URL points at a Redis Cluster node: the crawl needs a standalone Redis",
    "CLUSTERDOWN": "REDIS_URL points at a Redis Cluster node: the crawl needs a standalone Redis",
    "MASTERDOWN": "the replica lost its primary: point REDIS_URL at the primary",
    "NOREPLICAS": "the primary has fewer replicas in sync than its min-replicas-to-write: bring a "
    "replica back, or lower min-replicas-to-write",
    "LOADING": "Redis is loading its data set after a restart",
    "WRONGTYPE": "a key of the crawl holds another type: another program uses the crawl's keys",
}


#: redis-py's exception classes for the error codes of :data:`_ADVICE`.
_CODES: tuple[tuple[type[Exception], str], ...] = (
    (redis.exceptions.OutOfMemoryError, "OOM"),
    (redis.exceptions.NoPermissionError, "NOPERM"),
    (redis.exceptions.ReadOnlyError, "READONLY"),
    (redis.exceptions.MovedError, "MOVED"),
    (redis.exceptions.AskError, "ASK"),
    (redis.exceptions.ClusterDownError, "CLUSTERDOWN"),
    (redis.exceptions.MasterDownError, "MASTERDOWN"),
    (redis.exceptions.BusyLoadingError, "LOADING"),
    (redis.exceptions.AuthenticationError, "WRONGPASS"),
)


def is_connection_failure(error: BaseException) -> bool:
    """Whether Redis could not be reached at all (rather than answering with a refusal)."""
    return isinstance(error, redis.ConnectionError | redis.TimeoutError) and not isinstance(
        error, redis.exceptions.BusyLoadingError | redis.exceptions.AuthenticationError
    )


def redis_trouble(error: BaseException) -> str:
    """A Redis failure in a few words, with what to do about it when Redis refused a command.

    >>> redis_trouble(redis.ResponseError("BUSY Redis is busy running a script."))
    'BUSY Redis is busy running a script. — Redis is busy running a script: wait, or SCRIPT KILL it'
    >>> redis_trouble(redis.ResponseError("NOREPLICAS Not enough good replicas to write."))[:60]
    'NOREPLICAS Not enough good replicas to write. — the primary '
    >>> redis_trouble(redis.ConnectionError("Connection refused"))
    'ConnectionError'
    """
    if isinstance(error, MasterNotFoundError):  # Sentinel's answer, in one line (see .sentinel)
        return " ".join(str(error).split())[:300]
    if is_connection_failure(error):
        return type(error).__name__
    text = " ".join(str(error).split())[:200] or type(error).__name__
    # redis-py turns most codes into exception classes (dropping the code from the message); the
    # rest lead the message, or follow "ERR Error running script" when a script hit them
    code = next((code for cls, code in _CODES if isinstance(error, cls)), None) or next(
        (word for word in re.findall(r"\b[A-Z]{3,}\b", text) if word in _ADVICE), None
    )
    if code is None:
        return f"{type(error).__name__}: {text}"
    return f"{code} {text} — {_ADVICE[code]}" if not text.startswith(code) else f"{text} — {_ADVICE[code]}"


def redis_params(settings: BaseSettings) -> dict[str, Any]:
    """``REDIS_PARAMS``, checked: SettingError unless a dict (the value may hold a password: never shown)."""
    try:
        return dict(settings.getdict("REDIS_PARAMS"))
    except (TypeError, ValueError):
        raise SettingError(
            "REDIS_PARAMS must be a dict of redis-py client arguments (JSON with -s or in the environment)"
        ) from None


def redis_port(settings: BaseSettings) -> int | None:
    """``REDIS_PORT``, checked, where it counts (set, and no ``REDIS_URL``); else None."""
    if settings.get("REDIS_PORT") and not settings.get("REDIS_URL"):
        return int_setting(settings, "REDIS_PORT", 6379, at_least=1, at_most=65_535)
    return None


def check_location(settings: BaseSettings) -> None:
    """The checks :func:`redis_from_settings` makes of the Redis location settings (SettingError),
    without building a client."""
    redis_params(settings)
    if sentinel_config(settings) is None:
        redis_port(settings)


def redis_from_settings(settings: BaseSettings, timeout: float = DEFAULT_SOCKET_TIMEOUT) -> redis.Redis:
    """A client from scrapy-redis's settings (``REDIS_URL`` or ``REDIS_HOST``/``PORT``, ``REDIS_PARAMS``),
    or of the master the Sentinels name (``REDIS_SENTINELS``…, :mod:`.sentinel`).

    Responses stay bytes (payloads are binary-safe JSON), timeouts are short (at
    most ``timeout`` s) and redis-py does not retry: see the module docstring.
    A conflict between the Sentinel settings and the others raises :class:`SettingError`.
    """
    sentinels = sentinel_config(settings)
    params: dict[str, Any] = dict(stock_defaults.REDIS_PARAMS)
    params.update(redis_params(settings))
    for name, param in stock_connection.SETTINGS_PARAMS_MAP.items():
        value = settings.get(name)
        if value:
            params[param] = value
    if sentinels is not None:  # the master's address comes from the Sentinels; a URL's password stays
        params.update(url_params(settings))
        for param in ("url", "host", "port"):
            params.pop(param, None)
    elif (port := redis_port(settings)) is not None:
        params["port"] = port
    params.update(
        socket_timeout=min(float(params.get("socket_timeout") or timeout), timeout),
        socket_connect_timeout=min(
            float(params.get("socket_connect_timeout") or DEFAULT_CONNECT_TIMEOUT),
            DEFAULT_CONNECT_TIMEOUT,
            timeout,
        ),
        retry=Retry(NoBackoff(), 0),
        decode_responses=False,
    )
    # no retries come from Retry(…, 0); redis-py 6 deprecates retry_on_timeout, even False
    params.pop("retry_on_timeout", None)
    if sentinels is not None:
        redis_class = params.pop("redis_cls", None) or stock_defaults.REDIS_CLS
        return sentinel_client(sentinels, params, redis_class)
    client: redis.Redis = stock_connection.get_redis(**params)
    return client


def describe(settings: BaseSettings) -> str:
    """Where Redis is, for log lines: the URL without credentials, or the Sentinels and master name."""
    try:
        sentinels = sentinel_config(settings)
    except SettingError:
        sentinels = None  # refused where the client is built
    if sentinels is not None:
        return sentinels.describe()
    url = settings.get("REDIS_URL")
    if url:
        return redact_uri(str(url))
    return f"redis://{settings.get('REDIS_HOST') or 'localhost'}:{settings.get('REDIS_PORT') or 6379}"


class RedisOutage(Outage):
    """The scheduler's view of Redis: requests are held in the worker while it is away."""

    def __init__(self, where: str, retry_max: float = DEFAULTS["REDIS_RETRY_MAX"], **clock: Any) -> None:
        super().__init__(
            where,
            gone="Redis {state} at {where} — retrying in {pause:.1f} s, {held} requests held locally "
            "({advice})",
            back="Redis reachable again at {where} after {seconds:.1f} s; {flushed} held requests stored",
            logger=logger,
            retry_max=retry_max,
            **clock,
        )

    def failed(self, error: BaseException, held: int = 0, **details: Any) -> bool:
        state = "unreachable" if is_connection_failure(error) else "refuses the crawl's commands"
        return super().failed(error, held=held, state=state, advice=redis_trouble(error), **details)

    def recovered(self, flushed: int = 0, **details: Any) -> float | None:
        return super().recovered(flushed=flushed, **details)


def warn_unless_noeviction(server: redis.Redis, where: str) -> bool:
    """Warn when Redis may evict keys: an evicted payload or lease is a lost request. → True if it warned.

    A managed Redis may refuse CONFIG: then nothing is known and nothing said.
    """
    try:
        answer = server.config_get("maxmemory-policy")
    except redis.RedisError:
        return False
    policy = answer.get("maxmemory-policy") or answer.get(b"maxmemory-policy")  # type: ignore[call-overload]
    if isinstance(policy, bytes):
        policy = policy.decode(errors="replace")
    if policy in (None, "noeviction"):
        return False
    logger.warning(
        "Redis at %s has maxmemory-policy %s: when full it will evict the crawl's keys, and every evicted "
        "request is lost; set maxmemory-policy noeviction (a full Redis then refuses writes, which the "
        "workers hold and retry)",
        where,
        policy,
    )
    return True
