"""Redis through Sentinel: the crawl follows a failover by itself.

``REDIS_SENTINELS``, ``REDIS_SENTINEL_MASTER`` and ``REDIS_SENTINEL_PASSWORD`` replace ``REDIS_URL``
(which may then carry only the master's password and database): :func:`sentinel_client` asks the
Sentinels for the master at every connection; a conflicting ``REDIS_URL`` is refused at start-up.

Design notes: docs/framework-design.md#sentinel.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import redis
from redis.connection import parse_url
from redis.sentinel import MasterNotFoundError, Sentinel
from scrapy.settings import BaseSettings

from scrapy_sharedcrawl.config import SettingError
from scrapy_sharedcrawl.redact import redact_uri

DEFAULT_SENTINEL_PORT = 26379
_ADDRESS = re.compile(r"^(?:\[(?P<ip6>[0-9A-Fa-f:.]+)\]|(?P<host>[A-Za-z0-9_.-]+))(?::(?P<port>\d{1,5}))?$")


@dataclass(frozen=True)
class SentinelConfig:
    """Where the Sentinels are and which master they watch (no password: never shown)."""

    sentinels: tuple[tuple[str, int], ...]
    master: str
    password: str | None

    def describe(self) -> str:
        """For log lines: ``sentinel://h1:26379,h2:26379/crawlmaster`` (no credentials)."""
        hosts = ",".join(f"[{h}]:{p}" if ":" in h else f"{h}:{p}" for h, p in self.sentinels)
        return f"sentinel://{hosts}/{self.master}"


def _text(settings: BaseSettings, name: str) -> str:
    value = settings.get(name)
    if isinstance(value, list | tuple):
        return ",".join(str(part) for part in value)
    return str(value or "").strip()


def parse_sentinels(value: str) -> tuple[tuple[str, int], ...]:
    """``"h1:26379, h2"`` → ``(("h1", 26379), ("h2", 26379))``; SettingError for anything else.

    >>> parse_sentinels("10.0.0.1:26379,[::1]:26380, sentinel-c")
    (('10.0.0.1', 26379), ('::1', 26380), ('sentinel-c', 26379))
    """
    addresses = []
    for entry in (part.strip() for part in value.split(",")):
        found = _ADDRESS.match(entry) if entry else None
        port = int(found["port"]) if found and found["port"] else DEFAULT_SENTINEL_PORT
        if found is None or not 1 <= port <= 65_535:
            shown = redact_uri(entry)[:100]
            raise SettingError(
                f"REDIS_SENTINELS must be the Sentinels' host:port, comma-separated, got {shown!r}"
            )
        addresses.append((found["ip6"] or found["host"], port))
    return tuple(addresses)


def sentinel_config(settings: BaseSettings) -> SentinelConfig | None:
    """The Sentinel settings, checked (None: no Sentinel); SettingError names what is wrong.

    Conflicts refused: a master name without Sentinels, Sentinels without a master name,
    ``REDIS_HOST``/``REDIS_PORT`` beside them, a ``REDIS_URL`` that names a server.
    """
    sentinels, master = _text(settings, "REDIS_SENTINELS"), _text(settings, "REDIS_SENTINEL_MASTER")
    password = _text(settings, "REDIS_SENTINEL_PASSWORD") or None
    if not sentinels:
        if master:
            raise SettingError(
                "REDIS_SENTINEL_MASTER is set but REDIS_SENTINELS is not: list the Sentinels "
                "(host:port,host:port), or unset REDIS_SENTINEL_MASTER to use REDIS_URL"
            )
        return None
    if not master:
        raise SettingError(
            "REDIS_SENTINELS is set but REDIS_SENTINEL_MASTER is not: give the name the Sentinels "
            "monitor the master by (`sentinel monitor NAME …` in sentinel.conf)"
        )
    for name in ("REDIS_HOST", "REDIS_PORT"):
        if _text(settings, name):
            raise SettingError(
                f"REDIS_SENTINELS and {name} are both set: with Sentinel the master's address comes "
                f"from the Sentinels; unset {name}"
            )
    url = _text(settings, "REDIS_URL")
    if url:
        host = _url_host(url)
        if host != master:
            raise SettingError(
                f"REDIS_SENTINELS and REDIS_URL ({redact_uri(url)}) are both set and disagree: with "
                "Sentinel the master's address comes from the Sentinels; unset REDIS_URL, or give it "
                f"the master's name for host (redis://:PASSWORD@{master}/0) to carry the master's "
                "password and database"
            )
    return SentinelConfig(parse_sentinels(sentinels), master, password)


def _url_host(url: str) -> str | None:
    try:
        return parse_url(url).get("host")
    except ValueError:
        return None


def url_params(settings: BaseSettings) -> dict[str, Any]:
    """What a ``REDIS_URL`` beside Sentinel carries: the master's credentials, database, TLS."""
    url = _text(settings, "REDIS_URL")
    if not url:
        return {}
    params = parse_url(url)
    params.pop("host", None)
    params.pop("port", None)
    if params.pop("connection_class", None) is not None:  # rediss://
        params["ssl"] = True
    return params


class ExplainingSentinel(Sentinel):
    """redis-py's :class:`Sentinel`, whose "no master found" says why in one line an operator
    can act on (no Sentinel reachable, a password refused, a master name unknown, the master down),
    instead of listing each Sentinel's client object."""

    def __init__(self, config: SentinelConfig, **kwargs: Any) -> None:
        super().__init__(config.sentinels, **kwargs)
        self.config = config

    def discover_master(self, service_name: str) -> tuple[str, int]:
        unreachable: list[tuple[str, BaseException]] = []
        refused: list[tuple[str, BaseException]] = []
        unknown: list[str] = []
        down: list[str] = []
        known: set[str] = set()
        for number, sentinel in enumerate(self.sentinels):
            address = _address(sentinel)
            try:
                masters = sentinel.sentinel_masters()
            except redis.AuthenticationError as error:
                refused.append((address, error))
                continue
            except (redis.ConnectionError, redis.TimeoutError) as error:
                unreachable.append((address, error))
                continue
            except redis.ResponseError as error:
                (refused if "AUTH" in str(error).upper() else unreachable).append((address, error))
                continue
            if not isinstance(masters, dict):
                unreachable.append((address, ValueError("not a SENTINEL MASTERS reply")))
                continue
            known.update(str(name) for name in masters)
            state = masters.get(service_name)
            if state is None:
                unknown.append(address)
            elif self.check_master_state(state, service_name):
                self.sentinels[0], self.sentinels[number] = sentinel, self.sentinels[0]
                return str(state["ip"]), int(state["port"])
            else:
                down.append(address)
        raise MasterNotFoundError(self.explain(service_name, unreachable, refused, unknown, down, known))

    def explain(
        self,
        master: str,
        unreachable: list[tuple[str, BaseException]],
        refused: list[tuple[str, BaseException]],
        unknown: list[str],
        down: list[str],
        known: set[str],
    ) -> str:
        """The one line for :meth:`discover_master`'s failure, most telling cause first."""
        if down:
            return (
                f"the Sentinels at {', '.join(down)} report master {master!r} down: a failover is "
                "under way or no replica can be promoted"
            )
        if unknown:
            monitored = ", ".join(repr(name) for name in sorted(known)) or "none"
            return (
                f"the Sentinels at {', '.join(unknown)} monitor no master named {master!r} "
                f"(they monitor: {monitored}): fix REDIS_SENTINEL_MASTER"
            )
        if refused:
            where = ", ".join(address for address, _ in refused)
            if self.config.password is None:
                return f"the Sentinels at {where} want a password: set REDIS_SENTINEL_PASSWORD"
            if any("without any password" in str(error) for _, error in refused):
                return (
                    f"the Sentinels at {where} have no password but REDIS_SENTINEL_PASSWORD is set: "
                    "unset it, or set requirepass in sentinel.conf"
                )
            return f"the Sentinels at {where} refused REDIS_SENTINEL_PASSWORD"
        causes = sorted({type(error).__name__ for _, error in unreachable})
        return (
            f"no Sentinel reachable at {', '.join(address for address, _ in unreachable)} "
            f"({', '.join(causes)}): start them, or fix REDIS_SENTINELS"
        )


def _address(sentinel: redis.Redis) -> str:
    kwargs = sentinel.connection_pool.connection_kwargs
    return f"{kwargs.get('host')}:{kwargs.get('port')}"


def sentinel_client(
    config: SentinelConfig, params: dict[str, Any], redis_class: type[redis.Redis]
) -> redis.Redis:
    """A client of the master ``config`` names, with the master's client ``params`` (timeouts,
    retry, password…); the Sentinels get the same short timeouts, no retries, their own password."""
    sentinel_kwargs = {
        "socket_timeout": params["socket_connect_timeout"],
        "socket_connect_timeout": params["socket_connect_timeout"],
        "retry": params["retry"],
        "password": config.password,
    }
    sentinel = ExplainingSentinel(config, sentinel_kwargs=sentinel_kwargs)
    return sentinel.master_for(config.master, redis_class=redis_class, **params)
