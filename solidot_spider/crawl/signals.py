"""The project's own Scrapy signals (connect with ``crawler.signals.connect``)."""

from __future__ import annotations

#: A story was fetched again and its content hash matches the last one written,
#: so it is not written again. Sent by the dedupe pipeline with ``sid`` (int)
#: and ``item`` (the story); the store connects to it to record that the story
#: was seen (``last_seen``, ``fetch_count``). Handlers may be ``async def``.
story_unchanged = object()

#: MongoDB refused a story for good (a document it can't hold, a write error that won't pass):
#: the story is not stored. Sent by the store with ``sid`` (int) and ``reason`` (str), before the
#: request that produced it is acknowledged, so that nothing records the story as stored.
story_rejected = object()

#: A story page answered 404 (a gap in the sids, a story not published yet, or one taken down).
#: Sent by the spider with ``sid`` (int); the store records it so that the sid is tried again a
#: few times over the following days, then left alone (``SOLIDOT_REFRESH_GAP_*``).
story_missing = object()
