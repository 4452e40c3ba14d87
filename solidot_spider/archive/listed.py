"""Which stories a ``--latest`` crawl fetches of those its list pages and feed name.

:class:`ListedFilter` keeps those not stored yet and those the refresh policy says are due (all of
them with ``-a latest=all``); without a readable store, every listed story is fetched.

Design notes: docs/project-design.md#archive-listed.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from pymongo import MongoClient
from pymongo.collection import Collection
from scrapy.settings import BaseSettings
from scrapy.statscollectors import StatsCollector
from scrapy.utils.asyncio import run_in_thread

from scrapy_sharedcrawl.redact import redact_uri
from solidot_spider.archive.documents import bson_time
from solidot_spider.archive.mongo import StoreConfig, StoreError, mongo_client
from solidot_spider.archive.policy import Clock, clock_from_settings
from solidot_spider.archive.schedule import NEXT_DUE, valid_sid

logger = logging.getLogger(__name__)

STATS_PREFIX = "solidot/latest/"


class ListedFilter:
    """The listed sids worth a fetch (see the module docstring); one per spider, its client lazy."""

    def __init__(self, settings: BaseSettings, stats: StatsCollector) -> None:
        self.config = StoreConfig.from_settings(settings)
        self.clock: Clock = clock_from_settings(settings)
        self.stats = stats
        self._client: MongoClient[dict[str, Any]] | None = None
        self._unreachable_logged = False

    async def wanted(self, sids: Sequence[int]) -> list[int]:
        """``sids`` less the stored ones not due yet, in their order."""
        unique = list(dict.fromkeys(sids))
        self.stats.inc_value(STATS_PREFIX + "listed", len(unique))
        if not self.config.uri or not unique:
            return unique
        try:
            current = await run_in_thread(self._stored_not_due, unique)
        except StoreError as error:
            self.stats.inc_value(STATS_PREFIX + "store_unreachable")
            if not self._unreachable_logged:
                self._unreachable_logged = True
                logger.warning(
                    "--latest: the store can't be read (%s: %s); every listed story is fetched",
                    type(error).__name__,
                    redact_uri(str(error))[:200],
                )
            return unique
        if current:
            self.stats.inc_value(STATS_PREFIX + "not_due", len(current))
        return [sid for sid in unique if sid not in current]

    def _stored_not_due(self, sids: list[int]) -> set[int]:
        """The sids stored with a ``next_due`` after now (blocking: run in a thread)."""
        query = {"sid": {"$in": sids}, NEXT_DUE: {"$type": "date", "$gt": bson_time(self.clock())}}
        found = self._collection().find(query, {"_id": 0, "sid": 1})
        return {sid for document in found if (sid := valid_sid(document.get("sid"))) is not None}

    def _collection(self) -> Collection[dict[str, Any]]:
        if self._client is None:
            self._client = mongo_client(self.config.uri, self.config.server_selection_timeout_ms)
        return self.config.collection_of(self._client)

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None
