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
    #: Seconds of a rate-limited host's requests a pop hands out ahead (the rest wait in the queue).
    "SCHEDULER_HOST_HORIZON": 1.0,
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

#: What each setting means, for people: the framework's settings page is generated from this and
#: :data:`SETTINGS` (``python -m scrapy_sharedcrawl.settings_doc --write``), and a project's page reads
#: it for the framework's settings it lists.
DESCRIPTIONS: dict[str, str] = {
    "REDIS_URL": (
        "shared Redis: switches on the shared crawl (scheduler, duplicate filter, stats, host rate)"
    ),
    "REDIS_RETRY_MAX": "longest pause between reconnect tries while Redis is away",
    "SCHEDULER_QUEUE_KEY": (
        "Redis key prefix of the shared queue, its leases and seed marker (the `{…}` hash tag would "
        "keep them on one Redis Cluster slot, but the crawl needs a standalone Redis: Redis Cluster "
        "is not supported)"
    ),
    "SCHEDULER_SERIALIZER": (
        "how requests are written to the queue (JSON, checked on the way in and out; the add-on sets it)"
    ),
    "SCHEDULER_PERSIST": (
        "keep the queue and duplicate filter after the crawl finished (a closing worker never deletes them)"
    ),
    "SCHEDULER_FLUSH_ON_START": (
        "a worker deletes the crawl's queue, duplicate filter and seed marker when it opens, as in "
        "scrapy-redis (give it to one worker, never to a fleet)"
    ),
    "SCHEDULER_IDLE_BEFORE_CLOSE": (
        "seconds a seeded crawl must show nothing queued or leased anywhere before workers close "
        "(atomic check: 0 is safe)"
    ),
    "SCHEDULER_LEASE_SECONDS": (
        "how long a worker holds a request; a dead worker's requests return to the queue after it "
        "(renewed every third of it)"
    ),
    "SCHEDULER_ACK_INTERVAL": (
        "seconds between acknowledgement batches; the item pipelines flush first (the `ack_barrier` signal)"
    ),
    "SCHEDULER_PREFETCH": (
        "requests a worker leases per round trip to Redis; it hands them to its engine one at a time "
        "(at the end of a crawl another worker may wait while this one works through up to that many)"
    ),
    "SCHEDULER_HOST_HORIZON": (
        "seconds of a paced host's requests (`CLUSTER_HOST_RATE`, a Crawl-delay) a pop hands out ahead, "
        "the rest waiting in the shared queue for any worker: enough to keep the host's turns busy; "
        "longer, a worker holds leases it cannot send for that long (0.001–86,400)"
    ),
    "SCHEDULER_CONTINUOUS": "keep workers waiting for the next seed when a crawl is finished",
    "SCHEDULER_WAIT_FOR_SEED": (
        "seconds a worker started before any seed waits for one, then closes (`no_seed`)"
    ),
    "SCHEDULER_IDLE_POLL_MAX": "longest pause (s) between an idle worker's polls of Redis",
    "SCHEDULER_SEED_HINT": "how to seed, named by a worker waiting for a seed",
    "REDIS_START_URLS_KEY": "Redis list a spider's start URLs can be pushed to, as with scrapy-redis",
    "REDIS_START_URLS_AS_SET": "that key is a set (`SADD`) rather than a list",
    "REDIS_START_URLS_AS_ZSET": "that key is a sorted set (`ZADD`), highest score first",
    "REDIS_ENCODING": "encoding of that key's entries",
    "REDIS_START_URLS_BATCH_SIZE": "entries taken from that key per read",
    "SCHEDULER_DUPEFILTER_KEY": "Redis key prefix of the duplicate filter's shards",
    "DUPEFILTER_MODE": (
        "`set`: exact, ≈ 9 bytes per URL at any size (its shards grow with the crawl); `bloom`: ≈ 3.9 "
        "bytes per URL of `DUPEFILTER_CAPACITY` (at a 10⁻⁶ error rate), allocated whole at the start "
        "(≈ 7.2 MB at 2M): size the capacity to the crawl"
    ),
    "DUPEFILTER_CAPACITY": (
        "bloom mode only: URLs the Bloom filter is sized for (the first worker of a crawl fixes it); "
        "the set mode grows with the crawl"
    ),
    "DUPEFILTER_ERROR_RATE": "bloom mode only",
    "CRAWL_KEY_PREFIX": "Redis key prefix of the shared stats and the worker registry",
    "STATS_PUSH_INTERVAL": "seconds between pushes of the shared stats",
    "STATS_TTL": "how long the shared stats outlive the crawl",
    "WORKER_HEARTBEAT": "seconds between worker heartbeats; a worker is gone after 3 missed",
    "WORKER_NODE_NAME": (
        "this machine's name in the fleet, shown by `status` and `workers list` (`workers up` sets it "
        "to the node's deploy target name)"
    ),
    "WORKER_BUFFER_STAT": (
        "the stat of the items a worker's store holds unwritten, shown per worker by `status` and the "
        "dashboard (empty: none)"
    ),
    "STATS_SERIES_POINTS": (
        "points of the crawl's time series kept in Redis for the dashboard's charts, one per stats "
        "interval (0: none)"
    ),
    "STATS_SERIES_FIELDS": (
        "the project's own fields of the crawl's time series, name → stat names (`…/`: every stat "
        "under that prefix); `err_*` fields are error kinds on the dashboard (JSON in `-s` or the "
        "environment)"
    ),
    "CLUSTER_HOST_RATE": "requests/s per host for all workers together (0: no limit)",
    "CLUSTER_CRAWL_DELAY_MAX": "longest robots.txt Crawl-delay honoured (s)",
    "CLUSTER_HOST_KEY": "Redis key of a host's shared rate and pause",
    "RETRY_AFTER_MAX": "longest Retry-After (s) honoured on 429/503; the whole host pauses that long",
    "HOST_BACKOFF_BASE": "host pause (s) after a 5xx or connection error; doubles per failure in a row",
    "HOST_BACKOFF_MAX": "cap of that pause",
    "REDIS_HOST": (
        "scrapy-redis's other way to name the Redis, when `REDIS_URL` is empty (localhost and 6379 "
        "for the one left out); either set switches on the shared crawl too"
    ),
    "REDIS_PORT": (
        "with `REDIS_HOST`: scrapy-redis's other way to name the Redis, when `REDIS_URL` is empty "
        "(localhost and 6379 for the one left out); either set switches on the shared crawl too"
    ),
    "REDIS_PARAMS": (
        'extra redis-py client arguments, as in scrapy-redis (`{"password": …}`); set, it switches on '
        "the shared crawl too. A crawl given any of these four while `SCHEDULER` is set to one that "
        "shares nothing logs one warning line (JSON in `-s` or the environment)"
    ),
    "REDIS_SENTINELS": (
        "the Sentinels' `host:port`, comma-separated (port 26379 when left out): Redis through "
        "Sentinel instead of `REDIS_URL`, every client asks them for the master and follows a "
        "failover (see [Redis with "
        "Sentinel](deploying.md#redis-with-sentinel-no-single-point-of-failure)); switches on the "
        "shared crawl too"
    ),
    "REDIS_SENTINEL_MASTER": (
        "the name the Sentinels monitor the master by (`sentinel monitor NAME …`); required with "
        "`REDIS_SENTINELS`. The master's own password goes in `REDIS_PARAMS` or in a `REDIS_URL` "
        "whose host is this name (`redis://:PASSWORD@NAME/0`); a `REDIS_URL` naming a server, or "
        "`REDIS_HOST`/`REDIS_PORT`, beside `REDIS_SENTINELS` is refused at start-up"
    ),
    "REDIS_SENTINEL_PASSWORD": "the Sentinels' own password (their `requirepass`), never logged",
    "DUPEFILTER_DEBUG": (
        "log every filtered duplicate, not just the first (Scrapy's and scrapy-redis's setting)"
    ),
    "WARC_DIR": ("directory of the WARC files of every fetch (one set per worker process); empty: no WARC"),
    "WARC_PREFIX": (
        "WARC file names: `PREFIX-STARTED-SERIAL-PID~HOST.warc.gz`; letters, digits, `_`, `.`, `-` "
        "(empty: the project's `BOT_NAME`)"
    ),
    "WARC_MAX_SIZE": ("bytes after which a WARC file is completed and the next begun (100 kB to 10¹² bytes)"),
    "WARC_REVISITS": "a fetch whose payload this worker already stored becomes a `revisit` record",
    "WARC_COOKIES": (
        "keep `Cookie` / `Set-Cookie` values in WARC records (masked as `***` by default; "
        "`Authorization` and `Proxy-Authorization` always are)"
    ),
    "ALERT_MIN_PAGES": "pages received with no item before the `no_items` alert (1–10⁹)",
    "ALERT_WINDOW": (
        "the recent window (s) the `drop_share` alert reads (10–86,400; a finished crawl: its last one)"
    ),
    "ALERT_WINDOW_MIN_PAGES": "pages that window needs before `drop_share` judges it (1–10⁹)",
    "ALERT_DROP_SHARE": (
        "share of the window's pages one drop reason reaches for the `drop_share` alert (over 0, at most 1)"
    ),
    "CRAWL_REPORT_CLASS": (
        "the project's part of `status`, the dashboard and `/metrics` (a "
        "`scrapy_sharedcrawl.report.CrawlReport`; the default counts items scraped), and the likely "
        "causes of alerts"
    ),
    "DASHBOARD_TOKEN": (
        "the token `sharedcrawl dashboard` asks for; required when it binds beyond loopback; also "
        "read from the environment variable `SHAREDCRAWL_DASHBOARD_TOKEN` (never an option)"
    ),
    "RENAMED_SETTINGS": (
        "a project's old setting names, old name → new name, carried over with a deprecation warning "
        "([shared-crawl.md](shared-crawl.md))"
    ),
}

#: Defaults better said in words than as the value that stands for them.
DEFAULTS_IN_WORDS: dict[str, str] = {
    "CLUSTER_HOST_RATE": "1 / `DOWNLOAD_DELAY`",
    "STATS_TTL": "7 days",
    "WORKER_NODE_NAME": "the host name",
}
