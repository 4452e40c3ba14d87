"""The scheduler's settings, read once and checked at start-up.

A lease time of 0, a negative acknowledgement interval or a prefetch of none would make
every request expire at once or a loop spin: such a value stops the crawl with one line
naming the setting, its range and what was given (:class:`.config.SettingError`).
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from types import ModuleType
from typing import Any

from scrapy.settings import BaseSettings

from scrapy_sharedcrawl import serialization
from scrapy_sharedcrawl.config import bool_setting, float_setting, int_setting, setting
from scrapy_sharedcrawl.defaults import SETTINGS as DEFAULTS

#: Longest lease (s) and most requests prefetched that make sense (a day; a big batch).
LEASE_MAX, PREFETCH_MAX = 86_400.0, 10_000
#: Shortest host horizon (s): the pop counts in milliseconds.
HORIZON_MIN = 0.001


@dataclass(frozen=True)
class SchedulerSettings:
    """What :class:`.scheduler.LeasingScheduler` is told (the defaults: ``scrapy_sharedcrawl.defaults``)."""

    queue_key: str = DEFAULTS["SCHEDULER_QUEUE_KEY"]
    serializer: Any = serialization
    persist: bool = DEFAULTS["SCHEDULER_PERSIST"]
    flush_on_start: bool = DEFAULTS["SCHEDULER_FLUSH_ON_START"]
    idle_before_close: float = DEFAULTS["SCHEDULER_IDLE_BEFORE_CLOSE"]
    lease_seconds: float = DEFAULTS["SCHEDULER_LEASE_SECONDS"]
    ack_interval: float = DEFAULTS["SCHEDULER_ACK_INTERVAL"]
    retry_max: float = DEFAULTS["REDIS_RETRY_MAX"]
    continuous: bool = DEFAULTS["SCHEDULER_CONTINUOUS"]
    wait_for_seed: float = DEFAULTS["SCHEDULER_WAIT_FOR_SEED"]
    idle_poll_max: float = DEFAULTS["SCHEDULER_IDLE_POLL_MAX"]
    prefetch: int = DEFAULTS["SCHEDULER_PREFETCH"]
    host_horizon: float = DEFAULTS["SCHEDULER_HOST_HORIZON"]
    seed_hint: str = DEFAULTS["SCHEDULER_SEED_HINT"]

    @classmethod
    def from_settings(cls, settings: BaseSettings) -> SchedulerSettings:
        """Read and check every scheduler setting (raises :class:`.config.SettingError`)."""

        def seconds(name: str, *, above: float | None = None, at_least: float | None = None) -> float:
            return float_setting(
                settings, name, DEFAULTS[name], above=above, at_least=at_least, at_most=LEASE_MAX, meaning="s"
            )

        serializer: ModuleType | Any = setting(settings, "SCHEDULER_SERIALIZER", DEFAULTS)
        if isinstance(serializer, str):
            serializer = importlib.import_module(serializer)  # a module with loads/dumps, as in scrapy-redis
        return cls(
            queue_key=str(setting(settings, "SCHEDULER_QUEUE_KEY", DEFAULTS)),
            serializer=serializer,
            persist=bool_setting(settings, "SCHEDULER_PERSIST", DEFAULTS["SCHEDULER_PERSIST"]),
            flush_on_start=bool_setting(
                settings, "SCHEDULER_FLUSH_ON_START", DEFAULTS["SCHEDULER_FLUSH_ON_START"]
            ),
            idle_before_close=seconds("SCHEDULER_IDLE_BEFORE_CLOSE", at_least=0),
            lease_seconds=seconds("SCHEDULER_LEASE_SECONDS", above=0),
            ack_interval=seconds("SCHEDULER_ACK_INTERVAL", above=0),
            retry_max=seconds("REDIS_RETRY_MAX", above=0),
            continuous=bool_setting(settings, "SCHEDULER_CONTINUOUS", DEFAULTS["SCHEDULER_CONTINUOUS"]),
            wait_for_seed=seconds("SCHEDULER_WAIT_FOR_SEED", at_least=0),
            idle_poll_max=seconds("SCHEDULER_IDLE_POLL_MAX", above=0),
            prefetch=int_setting(
                settings,
                "SCHEDULER_PREFETCH",
                DEFAULTS["SCHEDULER_PREFETCH"],
                at_least=1,
                at_most=PREFETCH_MAX,
            ),
            # at least a millisecond: the pop counts in ms, and a horizon of 0 would never hand out a
            # paced host
            host_horizon=seconds("SCHEDULER_HOST_HORIZON", at_least=HORIZON_MIN),
            seed_hint=str(setting(settings, "SCHEDULER_SEED_HINT", DEFAULTS)),
        )
