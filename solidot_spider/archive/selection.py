"""Picking the stories due for a re-fetch from the store: what ``solidot-crawl seed --refresh`` seeds
and what ``scrapy crawl solidot -a refresh=true`` crawls.

A pick back-fills a schedule for stories stored before they had one, then takes
the stored stories and gaps due by now (``next_due``), the most overdue first,
at most ``SOLIDOT_REFRESH_MAX_PER_RUN``. Once they are queued, :meth:`RefreshPicker.claim`
moves their ``next_due`` past ``SOLIDOT_REFRESH_CLAIM`` so that the next run
does not pick them again before they are fetched. Blocking (pymongo): the
spider calls it in a thread.
"""

from __future__ import annotations

import logging

from scrapy.settings import BaseSettings

from scrapy_sharedcrawl.redact import redact_uri
from solidot_spider.archive.mongo import StoreConfig, mongo_client
from solidot_spider.archive.policy import RefreshPolicy, clock_from_settings
from solidot_spider.archive.schedule import Due, Schedules

logger = logging.getLogger(__name__)


class RefreshPicker:
    """The store's schedules, opened from the crawl's settings (``MONGO_URI``, ``SOLIDOT_REFRESH_*``)."""

    def __init__(self, settings: BaseSettings) -> None:
        config = self.check(settings)
        self.policy = RefreshPolicy.from_settings(settings)
        self.where = f"{redact_uri(config.uri)} {config.database}.{config.collection}"
        self.client = mongo_client(config.uri, config.server_selection_timeout_ms)
        self.schedules = Schedules(
            config.collection_of(self.client), self.policy, clock_from_settings(settings)
        )
        self.backfilled = 0

    @staticmethod
    def check(settings: BaseSettings) -> StoreConfig:
        """The store's settings, if a refresh can run with them (ValueError naming what is missing);
        the policy's settings are checked too."""
        config = StoreConfig.from_settings(settings)
        if not config.uri:
            raise ValueError("a refresh needs MONGO_URI: the stories it re-fetches are the stored ones")
        RefreshPolicy.from_settings(settings)
        clock_from_settings(settings)
        return config

    def pick(self) -> Due:
        """The sids due now (see the module docstring), logged in one line."""
        self.schedules.ensure_indexes()
        self.backfilled = self.schedules.backfill()
        if self.backfilled:
            logger.info(
                "Refresh: %s stored stories had no schedule; each now has one from its last fetch",
                f"{self.backfilled:,}",
            )
        due = self.schedules.due(self.policy.max_per_run)
        logger.info(
            "Refresh: %s stories and %s gaps due at %s in %s%s",
            f"{len(due.stories):,}",
            f"{len(due.gaps):,}",
            due.now.isoformat(timespec="seconds"),
            self.where,
            f" (more are due: at most SOLIDOT_REFRESH_MAX_PER_RUN = {self.policy.max_per_run:,} a run)"
            if due.more
            else "",
        )
        return due

    def claim(self, due: Due) -> None:
        self.schedules.claim(due)

    def close(self) -> None:
        self.client.close()


def pick_and_claim(settings: BaseSettings) -> tuple[Due, int]:
    """Pick what is due and claim it at once (a single-process refresh crawls it right away);
    returns the pick and how many schedules were back-filled."""
    picker = RefreshPicker(settings)
    try:
        due = picker.pick()
        picker.claim(due)
        return due, picker.backfilled
    finally:
        picker.close()
