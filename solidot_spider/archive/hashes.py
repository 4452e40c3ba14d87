"""What the store already holds, as a dedupe index for single-process crawls.

Without Redis, the dedupe stage only knows the current run; a rerun would pass
every story on as new and the store would compare each one again. Seeding the
in-memory index from the stored ``content_hash`` of every story (one
projection query, ~100 bytes per story) makes a rerun skip unchanged stories
at the dedupe stage, as a Redis-backed cluster does.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from pymongo import MongoClient
from pymongo.errors import PyMongoError
from scrapy.utils.asyncio import run_in_thread

from scrapy_sharedcrawl.redact import redact_uri
from solidot_spider.crawl.pipelines.dedupe import MemoryContentHashIndex, Outcome
from solidot_spider.defaults import SETTINGS

logger = logging.getLogger(__name__)


class StoredContentHashIndex(MemoryContentHashIndex):
    """A memory index seeded, on first use, with the hashes stored in MongoDB."""

    def __init__(
        self,
        uri: str,
        database: str,
        collection: str,
        timeout_ms: int = SETTINGS["MONGO_SERVER_SELECTION_TIMEOUT"],
    ) -> None:
        super().__init__()
        self.uri, self.database, self.collection = uri, database, collection
        self.timeout_ms = timeout_ms
        self._loaded = False
        self._lock = asyncio.Lock()

    def describe(self) -> str:
        return f"memory, seeded from {redact_uri(self.uri)} {self.database}.{self.collection}"

    async def compare_and_set(self, sid: int, digest: str) -> Outcome:
        if not self._loaded:
            async with self._lock:
                if not self._loaded:
                    self._hashes.update(await self._stored_hashes())
                    self._loaded = True
        return await super().compare_and_set(sid, digest)

    async def _stored_hashes(self) -> dict[int, str]:
        try:
            return await run_in_thread(self._read)
        except PyMongoError as error:
            logger.warning(
                "Could not read stored content hashes from %s (%s): every story passes as new, "
                "the store still tells unchanged ones apart",
                redact_uri(self.uri),
                redact_uri(type(error).__name__),
            )
            return {}

    def _read(self) -> dict[int, str]:
        client: MongoClient[dict[str, Any]] = MongoClient(self.uri, serverSelectionTimeoutMS=self.timeout_ms)
        try:
            cursor = client[self.database][self.collection].find(
                {"content_hash": {"$exists": True}}, {"_id": 0, "sid": 1, "content_hash": 1}
            )
            hashes = {int(doc["sid"]): str(doc["content_hash"]) for doc in cursor}
        finally:
            client.close()
        logger.info("Dedupe: %d stored content hashes loaded", len(hashes))
        return hashes
