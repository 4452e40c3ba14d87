"""The names the shared crawl's settings had inside solidot-crawler 0.1, read for one more release.

:func:`apply_legacy_names` copies each old name's value to its new name (unless the new
name was given at a priority at least as high) and warns once per old name. The add-on
calls it, so every crawl honours old names; command-line tools that build settings
without running add-ons call it themselves.
"""

from __future__ import annotations

import warnings

from scrapy.exceptions import ScrapyDeprecationWarning
from scrapy.settings import BaseSettings

#: Old name → new name.
RENAMED: dict[str, str] = {
    "SOLIDOT_LEASE_SECONDS": "SCHEDULER_LEASE_SECONDS",
    "SOLIDOT_ACK_INTERVAL": "SCHEDULER_ACK_INTERVAL",
    "SOLIDOT_PREFETCH": "SCHEDULER_PREFETCH",
    "SOLIDOT_CONTINUOUS": "SCHEDULER_CONTINUOUS",
    "SOLIDOT_WAIT_FOR_SEED": "SCHEDULER_WAIT_FOR_SEED",
    "SOLIDOT_IDLE_POLL_MAX": "SCHEDULER_IDLE_POLL_MAX",
    "SOLIDOT_REDIS_RETRY_MAX": "REDIS_RETRY_MAX",
    "SOLIDOT_DUPEFILTER": "DUPEFILTER_MODE",
    "SOLIDOT_DUPEFILTER_CAPACITY": "DUPEFILTER_CAPACITY",
    "SOLIDOT_DUPEFILTER_ERROR_RATE": "DUPEFILTER_ERROR_RATE",
    "SOLIDOT_STATS_KEY": "CRAWL_KEY_PREFIX",
    "SOLIDOT_STATS_INTERVAL": "STATS_PUSH_INTERVAL",
    "SOLIDOT_STATS_TTL": "STATS_TTL",
    "SOLIDOT_WORKER_HEARTBEAT": "WORKER_HEARTBEAT",
    "SOLIDOT_NODE_NAME": "WORKER_NODE_NAME",
    "SOLIDOT_HOST_RATE": "CLUSTER_HOST_RATE",
    "SOLIDOT_HOST_KEY": "CLUSTER_HOST_KEY",
    "SOLIDOT_CRAWL_DELAY_MAX": "CLUSTER_CRAWL_DELAY_MAX",
    "SOLIDOT_RETRY_AFTER_MAX": "RETRY_AFTER_MAX",
    "SOLIDOT_BACKOFF_BASE": "HOST_BACKOFF_BASE",
    "SOLIDOT_BACKOFF_MAX": "HOST_BACKOFF_MAX",
    "SOLIDOT_WARC_DIR": "WARC_DIR",
    "SOLIDOT_WARC_PREFIX": "WARC_PREFIX",
    "SOLIDOT_WARC_MAX_SIZE": "WARC_MAX_SIZE",
    "SOLIDOT_WARC_REVISITS": "WARC_REVISITS",
    "SOLIDOT_WARC_COOKIES": "WARC_COOKIES",
}


def apply_legacy_names(settings: BaseSettings) -> list[str]:
    """Carry every old name that is set over to its new name, then drop it (so settings that pass here
    twice, a tool's and then its crawler's, warn once); the old names found, each warned about.

    The value moves at the old name's priority, so ``-s SOLIDOT_LEASE_SECONDS=30`` still beats the
    project's ``SCHEDULER_LEASE_SECONDS``, and a new name given at the same or a higher priority wins.
    """
    found = []
    for old, new in RENAMED.items():
        value = settings.get(old)
        if value is None or value == "":
            continue
        found.append(old)
        priority = settings.getpriority(old) or 0
        if not settings.frozen:
            if priority > (settings.getpriority(new) or 0):
                settings.set(new, value, priority)
            settings.delete(old, priority)  # carried over: a later pass (the add-on after a tool) skips it
        warnings.warn(
            f"The setting {old} is deprecated: use {new} (same meaning); {old} is read until the next "
            "release",
            ScrapyDeprecationWarning,
            stacklevel=2,
        )
    return found
