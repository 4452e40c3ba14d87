"""scrapy_sharedcrawl: one Scrapy crawl shared by any number of workers through one standalone Redis.

The contract: a request is leased, never handed over, and acknowledged only once done (its own
items durable behind the ``ack_barrier`` signal, request by request (:mod:`.durability`), the
requests it found stored), so a worker killed at any moment loses nothing; nothing read from Redis
is executed (JSON requests, checked against the spider's own); the crawl finishes by itself when
nothing is queued or leased anywhere, and exactly one worker cleans up. Switch it on with
``ADDONS = {"scrapy_sharedcrawl.addon.SharedCrawl": 0}`` and a Redis named as scrapy-redis names it
(``REDIS_URL``, or ``REDIS_HOST``/``REDIS_PORT``, ``REDIS_PARAMS``: settings, ``-s`` or the
environment; or Sentinels, :mod:`.sentinel`); every setting is in :mod:`.defaults`. Parts: the
scheduler (:mod:`.scheduler` and :mod:`.push_buffer`, :mod:`.lease_ledger`, :mod:`.engine_hooks`,
:mod:`.heartbeat`, :mod:`.crawl_end`, :mod:`.rejects`), the data in Redis (:mod:`.queue`,
:mod:`.dupefilter`, :mod:`.serialization`, :mod:`.admission`, :mod:`.keys`), the durability of what
a request produced (:mod:`.durability`, :mod:`.item_outbox`), feeding it (:mod:`.start`,
:mod:`.start_urls`, :mod:`.redis_spiders`, :mod:`.seeding`), knowing about it (:mod:`.finishing`,
:mod:`.stats`, :mod:`.timeseries`, :mod:`.workers`, :mod:`.report`, what every page came to and
the alerts it makes: :mod:`.outcomes`, :mod:`.alerts`), politeness for the whole
cluster (:mod:`.cluster_rate`, :mod:`.backoff`), the operator's commands (:mod:`.cli`,
:mod:`.fleet`). How it works: ``docs/shared-crawl.md``.
"""
