"""Redis clients for the scheduler, and how it rides out Redis going away.

scrapy-redis's client defaults (30 s socket timeouts, redis-py's own retries
with sleeps) are fine in a thread but not on Scrapy's reactor thread, where
the scheduler must answer the engine synchronously: here a call fails within
``REDIS_SOCKET_TIMEOUT`` seconds and is never retried inside redis-py; the
scheduler decides what to do (hold requests locally, back off, probe).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry
from scrapy.settings import BaseSettings
from scrapy_redis import connection as stock_connection
from scrapy_redis import defaults as stock_defaults

from solidot_spider.redact import redact_uri

logger = logging.getLogger(__name__)

#: Longest a Redis call may block the reactor (connect, or wait for a reply), in seconds.
DEFAULT_SOCKET_TIMEOUT = 5.0
DEFAULT_CONNECT_TIMEOUT = 2.0

#: What "Redis is unreachable" looks like to redis-py (a restarting server answers LOADING, a
#: demoted primary READONLY: both pass).
UNREACHABLE: tuple[type[Exception], ...] = (
    redis.ConnectionError,
    redis.TimeoutError,
    redis.exceptions.ReadOnlyError,
)


def redis_from_settings(settings: BaseSettings, timeout: float = DEFAULT_SOCKET_TIMEOUT) -> redis.Redis:
    """A client from scrapy-redis's settings (``REDIS_URL`` or ``REDIS_HOST``/``PORT``, ``REDIS_PARAMS``).

    Responses stay bytes (payloads are binary-safe JSON), timeouts are short (at
    most ``timeout`` s) and redis-py does not retry: see the module docstring.
    """
    params: dict[str, Any] = dict(stock_defaults.REDIS_PARAMS)
    params.update(settings.getdict("REDIS_PARAMS"))
    for name, param in stock_connection.SETTINGS_PARAMS_MAP.items():
        value = settings.get(name)
        if value:
            params[param] = value
    params.update(
        socket_timeout=min(float(params.get("socket_timeout") or timeout), timeout),
        socket_connect_timeout=min(
            float(params.get("socket_connect_timeout") or DEFAULT_CONNECT_TIMEOUT),
            DEFAULT_CONNECT_TIMEOUT,
            timeout,
        ),
        retry_on_timeout=False,
        retry=Retry(NoBackoff(), 0),
        decode_responses=False,
    )
    client: redis.Redis = stock_connection.get_redis(**params)
    return client


def describe(settings: BaseSettings) -> str:
    """Where Redis is, for log lines: the URL without credentials."""
    url = settings.get("REDIS_URL")
    if url:
        return redact_uri(str(url))
    return f"redis://{settings.get('REDIS_HOST') or 'localhost'}:{settings.get('REDIS_PORT') or 6379}"


@dataclass
class Outage:
    """Whether Redis is reachable, and when to try it again (doubling pauses, capped).

    Calls are not attempted while ``retry_at`` is in the future: a dead server
    costs one failed call per pause, not one per scheduler call.
    """

    where: str
    retry_base: float = 0.5
    retry_max: float = 10.0
    since: float | None = None
    retry_at: float = 0.0
    attempts: int = 0
    outages: int = 0
    _clock: Any = field(default=time.monotonic, repr=False)

    @property
    def down(self) -> bool:
        return self.since is not None

    def may_try(self) -> bool:
        """True when Redis is up, or when a failed server is due for another try."""
        return self.since is None or self._clock() >= self.retry_at

    def failed(self, error: BaseException, held: int) -> None:
        """A call failed for want of Redis: log the first failure of an outage, back off."""
        now = self._clock()
        self.attempts += 1
        pause = min(self.retry_max, self.retry_base * 2 ** (self.attempts - 1))
        self.retry_at = now + pause
        if self.since is None:
            self.since = now
            self.outages += 1
            logger.warning(
                "Redis unreachable at %s — retrying in %.1f s, %d requests held locally (%s)",
                self.where,
                pause,
                held,
                type(error).__name__,
            )

    def recovered(self, flushed: int) -> None:
        """A call succeeded after an outage: say so once."""
        if self.since is None:
            return
        logger.info(
            "Redis reachable again at %s after %.1f s; %d held requests stored",
            self.where,
            self._clock() - self.since,
            flushed,
        )
        self.since, self.attempts, self.retry_at = None, 0, 0.0
