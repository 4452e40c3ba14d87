"""Every range-checked framework setting, read once when the crawl starts, before any component is built.

Each component checks its own settings when it is built (:class:`.config.SettingError`), but by then
Scrapy 2.19 has built others: a bad value ended the crawl in a traceback, followed by Scrapy's own
("Engine slot not assigned") when the scheduler was the one that refused. The add-on runs
:func:`check_settings` first instead, and :func:`refuse_start` for any SettingError (its own too):
one CRITICAL line naming the setting, what it allows and what was given; the crawl counts as failed
to start (``scrapy crawl`` exits with 1) and nothing is fetched. The components keep their own
checks (a later add-on may still change a setting).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import NoReturn

from scrapy.settings import BaseSettings

from scrapy_sharedcrawl.alerts import AlertSettings
from scrapy_sharedcrawl.backoff import backoff_settings
from scrapy_sharedcrawl.cluster_rate import crawl_delay_max, host_rate
from scrapy_sharedcrawl.compat import quiet_reported_start_failure
from scrapy_sharedcrawl.config import SettingError, is_shared_crawl, redis_configured
from scrapy_sharedcrawl.connection import check_location
from scrapy_sharedcrawl.dupefilter import filter_settings
from scrapy_sharedcrawl.scheduler.settings import SchedulerSettings
from scrapy_sharedcrawl.start_urls import start_urls_kind
from scrapy_sharedcrawl.stats import stats_timing
from scrapy_sharedcrawl.timeseries import series_fields, series_points
from scrapy_sharedcrawl.warc.recorder import file_settings

logger = logging.getLogger(__name__)

Check = Callable[[BaseSettings], object]

#: Read in any crawl: the components installed whether or not a Redis is configured.
ALWAYS: tuple[Check, ...] = (backoff_settings, file_settings)
#: Read where a Redis is configured (shared stats and their series, the cluster rate, the alerts).
WITH_REDIS: tuple[Check, ...] = (
    check_location,
    stats_timing,
    series_points,
    series_fields,
    host_rate,
    crawl_delay_max,
    AlertSettings.from_settings,
)
#: Read where the crawl is shared (the leasing scheduler and its dupefilter).
SHARED: tuple[Check, ...] = (SchedulerSettings.from_settings, filter_settings, start_urls_kind)


def check_settings(settings: BaseSettings) -> None:
    """Read every framework setting the components of this crawl will read; SettingError for the first
    that can't work."""
    checks = list(ALWAYS)
    if redis_configured(settings):
        checks += WITH_REDIS
        if is_shared_crawl(settings):
            checks += SHARED
    for check in checks:
        check(settings)


def refuse_start(error: SettingError) -> NoReturn:
    """Raise ``error``: Scrapy marks the crawl failed to start (exit code 1). In Scrapy's crawl task it
    is logged here, once, and the traceback asyncio would add is left out
    (:func:`.compat.quiet_reported_start_failure`); elsewhere (a tool that configures a crawler, such
    as ``sharedcrawl seed``) the caller tells it, in its own line."""
    if quiet_reported_start_failure(error):
        logger.critical("%s: the crawl does not start", error)
    raise error
