"""Sharing one crawl between workers through Redis: leased queue, compact dupefilter, JSON requests.

Modules: :mod:`.serialization` (requests ↔ JSON), :mod:`.queue` (the leased
priority queue), :mod:`.dupefilter` (64-bit fingerprints in intsets),
:mod:`.scheduler` (the Scrapy scheduler), :mod:`.connection` (clients, outages),
:mod:`.seeding` (putting requests into the queue from outside a crawl),
:mod:`.finishing` (when a shared crawl is over: seed marker, finished record, clean-up),
:mod:`.stats` (shared stats), :mod:`.workers` (the registry of live workers),
:mod:`.addon` (switches all of it on when ``REDIS_URL`` is set).
"""
