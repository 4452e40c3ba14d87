"""Every setting of the shared crawl with its default, declared here and nowhere else.

Components read them through :func:`scrapy_sharedcrawl.config.setting` (or the checked
``float_setting`` / ``int_setting``) against this table, so a project sets only what it
changes. Names are scrapy-redis's where scrapy-redis has the setting (``REDIS_URL``,
``SCHEDULER_PERSIST``, ``SCHEDULER_QUEUE_KEY``, ``REDIS_START_URLS_KEY``…); the others
are prefixed by the component they tune. A project's old names of them, listed in its
``RENAMED_SETTINGS``, are still read, with a warning (:mod:`.legacy`).
"""

from __future__ import annotations

from typing import Any

SETTINGS: dict[str, Any] = {
    # -- Redis ------------------------------------------------------------------------------
    #: The shared crawl is on when this is set (the add-on switches it on).
    "REDIS_URL": "",
    #: Longest pause (s) between reconnect tries while Redis is away (requests are held meanwhile).
    "REDIS_RETRY_MAX": 10.0,
    # -- the scheduler and its queue -----------------------------------------------------------
    "SCHEDULER_QUEUE_KEY": "{%(spider)s}:requests",
    "SCHEDULER_SERIALIZER": "scrapy_sharedcrawl.serialization",
    #: False: the worker that finds the crawl finished deletes its queue and dupefilter.
    "SCHEDULER_PERSIST": False,
    "SCHEDULER_FLUSH_ON_START": False,
    #: Seconds a seeded crawl must show nothing queued or leased before workers close.
    "SCHEDULER_IDLE_BEFORE_CLOSE": 0,
    #: How long a worker holds a request; a dead worker's requests return to the queue after it.
    "SCHEDULER_LEASE_SECONDS": 120.0,
    #: Seconds between acknowledgement batches (the ack_barrier signal is sent first).
    "SCHEDULER_ACK_INTERVAL": 1.0,
    #: Requests leased per pop (the engine is handed them one by one).
    "SCHEDULER_PREFETCH": 8,
    #: Keep workers running when a crawl is finished, waiting for the next seed.
    "SCHEDULER_CONTINUOUS": False,
    #: Seconds a worker started before any seed waits for one, then closes (reason no_seed).
    "SCHEDULER_WAIT_FOR_SEED": 300.0,
    #: Longest pause (s) between an idle worker's polls of Redis (from 0.25 s, doubling).
    "SCHEDULER_IDLE_POLL_MAX": 30.0,
    #: How to seed this crawl, named in the log lines of a worker waiting for a seed.
    "SCHEDULER_SEED_HINT": "`LPUSH <spider>:start_urls URL` (or a worker given start requests)",
    # -- start URLs pushed by hand (scrapy-redis's RedisSpider habit) ------------------------------
    #: ``LPUSH <spider>:start_urls URL…`` (or SADD with REDIS_START_URLS_AS_SET) feeds the crawl.
    "REDIS_START_URLS_KEY": "%(name)s:start_urls",
    "REDIS_START_URLS_AS_SET": False,
    #: A sorted set instead, read highest score first (scrapy-redis's ZSET form).
    "REDIS_START_URLS_AS_ZSET": False,
    #: How a plain start-URL entry is decoded (a scrapy-redis spider's ``redis_encoding`` wins).
    "REDIS_ENCODING": "utf-8",
    #: URLs taken from the key per round trip.
    "REDIS_START_URLS_BATCH_SIZE": 100,
    # -- the duplicate filter -------------------------------------------------------------------
    "SCHEDULER_DUPEFILTER_KEY": "{%(spider)s}:seen",
    #: "set" (exact, ≈ 9 bytes per URL at any size: its shards grow with the crawl) or "bloom"
    #: (≈ 3.9 bytes per URL of its capacity, false positives).
    "DUPEFILTER_MODE": "set",
    #: URLs a Bloom filter is sized for (bloom mode only).
    "DUPEFILTER_CAPACITY": 2_000_000,
    "DUPEFILTER_ERROR_RATE": 1e-6,
    # -- shared stats and the worker registry ----------------------------------------------------
    #: Prefix of the crawl's other keys: stats, per-minute pages, the worker registry.
    "CRAWL_KEY_PREFIX": "{%(spider)s}",
    #: Seconds between pushes of a worker's stats into the shared ones.
    "STATS_PUSH_INTERVAL": 5.0,
    #: How long (s) the shared stats outlive the crawl.
    "STATS_TTL": 7 * 24 * 3600.0,
    #: Seconds between worker heartbeats; a worker is gone after 3 missed.
    "WORKER_HEARTBEAT": 5.0,
    #: This machine's name in the fleet (empty: the host name).
    "WORKER_NODE_NAME": "",
    #: A gauge of the items a worker's store holds unwritten, shown per worker (empty: none).
    "WORKER_BUFFER_STAT": "",
    #: Points of the crawl's time series kept in Redis, one per stats interval (0: none).
    "STATS_SERIES_POINTS": 120_000,
    #: A project's own fields of the time series: name → stat names (``…/``: a prefix).
    "STATS_SERIES_FIELDS": {},
    # -- politeness shared by every worker -------------------------------------------------------
    #: Requests/s per host for all workers together (None or "": 1 / DOWNLOAD_DELAY; 0: no limit).
    "CLUSTER_HOST_RATE": None,
    #: Longest robots.txt Crawl-delay honoured (s).
    "CLUSTER_CRAWL_DELAY_MAX": 30.0,
    "CLUSTER_HOST_KEY": "{%(spider)s}:host:%(host)s",
    #: Longest Retry-After honoured (s); longer ones are capped.
    "RETRY_AFTER_MAX": 120.0,
    #: Pause after the first 5xx/connection error in a row (doubling) and its cap (s).
    "HOST_BACKOFF_BASE": 0.25,
    "HOST_BACKOFF_MAX": 30.0,
    # -- scrapy-redis's other ways to name the Redis, and its dupefilter's log switch --------------
    #: Used when REDIS_URL is empty (scrapy-redis's localhost:6379 for what is left out); any of
    #: them set switches the shared crawl on too.
    "REDIS_HOST": "",
    "REDIS_PORT": None,
    #: Extra redis-py client arguments (a dict; JSON with -s or in the environment).
    "REDIS_PARAMS": {},
    #: Redis through Sentinel instead of REDIS_URL (scrapy_sharedcrawl.sentinel): the Sentinels'
    #: host:port, comma-separated, the master's name they monitor, and their own password.
    "REDIS_SENTINELS": "",
    "REDIS_SENTINEL_MASTER": "",
    "REDIS_SENTINEL_PASSWORD": "",
    #: Log every filtered duplicate, not just the first.
    "DUPEFILTER_DEBUG": False,
    # -- the WARC recorder (scrapy_sharedcrawl.warc): every fetch as the network gave it ----------
    #: Directory of the crawl's WARC files, one set per worker process (empty: no recording).
    "WARC_DIR": "",
    #: File names: PREFIX-STARTED-SERIAL-PID~HOST.warc.gz (empty: the project's BOT_NAME).
    "WARC_PREFIX": "",
    #: Bytes after which a WARC file is completed and the next one started.
    "WARC_MAX_SIZE": 1_000_000_000,
    #: A fetch whose payload this worker already stored (same digest) becomes a short revisit record.
    "WARC_REVISITS": True,
    #: Keep Cookie / Set-Cookie values in the records (a session is a credential: masked by default).
    "WARC_COOKIES": False,
    # -- the operator views ----------------------------------------------------------------------
    #: Alerts (:mod:`.alerts`): pages received with no item yet before "many pages, no items".
    "ALERT_MIN_PAGES": 100,
    #: The recent window (s) the drop alert reads (a finished crawl: its last one).
    "ALERT_WINDOW": 300.0,
    #: Pages that window needs before the drop alert judges it.
    "ALERT_WINDOW_MIN_PAGES": 20,
    #: Share of the window's pages one drop reason reaches to be an alert (0–1].
    "ALERT_DROP_SHARE": 0.2,
    #: A project's own part of status, the dashboard and /metrics (:mod:`.report`).
    "CRAWL_REPORT_CLASS": "scrapy_sharedcrawl.report.CrawlReport",
    #: ``dashboard``: the token its page, JSON and /metrics ask for (required off loopback; or the
    #: environment's SHAREDCRAWL_DASHBOARD_TOKEN). "" : none.
    "DASHBOARD_TOKEN": "",
    #: a project's old setting names, old name -> new name: carried over with a deprecation warning
    #: (.legacy). {} : none.
    "RENAMED_SETTINGS": {},
}
