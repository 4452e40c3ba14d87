"""Scrapy settings of the solidot-crawler project.

Every project setting is declared here with its default; each ``SOLIDOT_*``,
``REDIS_*``, ``MONGO_*`` and ``SCHEDULER_*`` one can also be given as an
environment variable of the same name (see the end of this module), and
``SOLIDOT_LOG_LEVEL`` sets ``LOG_LEVEL``. ``-s NAME=VALUE`` on the command line
(schedule.json's ``setting=`` on scrapyd) overrides both.
"""

from __future__ import annotations

import os


def _env(name: str, default: str) -> str:
    value = os.environ.get(name, "").strip()
    return value or default


BOT_NAME = "solidot_spider"
SPIDER_MODULES = ["solidot_spider.spiders"]
NEWSPIDER_MODULE = "solidot_spider.spiders"

# --- The site --------------------------------------------------------------
#: Base URL of the site; category hosts are derived from it (linux.<domain> …).
SOLIDOT_BASE_URL = "https://www.solidot.org"
#: "DOMAIN=ADDRESS,…": DOMAIN and every name under it resolve to ADDRESS.
SOLIDOT_RESOLVE = ""
TWISTED_DNS_RESOLVER = "solidot_spider.resolver.OverrideResolver"
#: The site is UTF-8: re-read responses that claim another charset but are UTF-8.
SOLIDOT_FORCE_UTF8 = True
#: Largest scope a crawl or `solidot-crawl seed` accepts: story ids named by -a sids= / --sids
#: (the whole site is ≈ 85.6k) and days named by since/until (≈ 30 years); more is refused at start-up.
SOLIDOT_MAX_SIDS = 200_000
SOLIDOT_MAX_DAYS = 11_000

# --- Politeness (defaults for the real site; tests and benchmarks turn them down)
SOLIDOT_CONTACT_URL = _env("SOLIDOT_CONTACT_URL", "https://github.com/solidot-crawler/solidot-crawler")
USER_AGENT = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    f"Chrome/131.0 Safari/537.36 solidot-crawler/0.1 (+{SOLIDOT_CONTACT_URL})"
)
ROBOTSTXT_OBEY = True
AUTOTHROTTLE_ENABLED = True
AUTOTHROTTLE_START_DELAY = 2.0
AUTOTHROTTLE_MAX_DELAY = 60.0
AUTOTHROTTLE_TARGET_CONCURRENCY = 1.0
DOWNLOAD_DELAY = 1.0
CONCURRENT_REQUESTS = 16
CONCURRENT_REQUESTS_PER_DOMAIN = 2
DOWNLOAD_TIMEOUT = 30
#: A story page is tens of kB: Scrapy's default 1 GiB would let one bad answer fill the memory.
#: Larger responses are cancelled (and logged); those over DOWNLOAD_WARNSIZE are logged.
DOWNLOAD_MAXSIZE = 16 * 1024 * 1024
DOWNLOAD_WARNSIZE = 4 * 1024 * 1024
#: Scrapy starts CONCURRENT_ITEMS worker tasks for *every* response's output (100 by default);
#: a story page yields one item and a list page ~20 requests, so 8 keeps the parallelism and
#: saves ~100 asyncio tasks per page (≈ 10 % of the crawl's CPU, measured with cProfile).
CONCURRENT_ITEMS = 8

# --- Faults: retry patiently, slow down for a struggling host ------------------
RETRY_TIMES = 6
#: Extra fetches of a page that arrived cut off before </html>.
SOLIDOT_TRUNCATED_RETRIES = 3
#: Longest Retry-After honoured (seconds); longer values are capped.
SOLIDOT_RETRY_AFTER_MAX = 120.0
#: Pause after the first 5xx/connection error in a row (doubles each time) and its cap.
SOLIDOT_BACKOFF_BASE = 0.25
SOLIDOT_BACKOFF_MAX = 30.0

# --- Item pipelines: clean → validate → deduplicate → store ----------------------
ITEM_PIPELINES = {
    "solidot_spider.pipelines.clean.CleanPipeline": 100,
    "solidot_spider.pipelines.validate.ValidatePipeline": 200,
    "solidot_spider.pipelines.dedupe.DedupePipeline": 300,
    "solidot_spider.pipelines.store.MongoStorePipeline": 800,
}
#: Largest story body kept (UTF-8 bytes of body_html or body_text); larger ones are dropped.
SOLIDOT_MAX_BODY_BYTES = 2_000_000
#: Shared Redis (the scheduler uses it too); dedupe keeps its content hashes there when set.
REDIS_URL = ""
#: Redis hash of sid → content hash.
SOLIDOT_DEDUPE_KEY = "solidot:content_hash"
#: Seconds stories wait for an unreachable Redis (per outage) before passing as new.
SOLIDOT_DEDUPE_REDIS_TIMEOUT = 60.0
#: Longest pause between Redis retries (s); pauses start at 0.1 s and double.
SOLIDOT_DEDUPE_RETRY_MAX = 5.0

# --- Store: MongoDB (off while MONGO_URI is empty: items go to the feed file) -----
MONGO_URI = ""
MONGO_DATABASE = "solidot"
MONGO_COLLECTION = "stories"
#: Stories per bulk write, and the longest wait (s) before a partial batch is written.
MONGO_BATCH_SIZE = 500
MONGO_FLUSH_INTERVAL = 2.0
#: Stories held while MongoDB is away; when full, items wait (never dropped).
MONGO_MAX_BUFFER = 50_000
#: Retry pause (s) while MongoDB is unreachable, doubling, and its cap.
MONGO_RETRY_BASE = 0.5
MONGO_RETRY_MAX = 30.0
#: Milliseconds pymongo waits for a server before an attempt fails.
MONGO_SERVER_SELECTION_TIMEOUT = 5000

DOWNLOADER_MIDDLEWARES = {
    "scrapy_sharedcrawl.backoff.HostBackoffMiddleware": 560,
    "solidot_spider.middlewares.charset.SiteCharsetMiddleware": 600,
    # after robots.txt (a forbidden request takes no turn) and the HTTP cache; off without REDIS_URL
    "scrapy_sharedcrawl.cluster_rate.ClusterRateLimitMiddleware": 950,
}

# --- Output: the embedded default writes JSON Lines -----------------------------
#: Where items go when neither -o/-O nor MONGO_URI says otherwise ("" turns the file off).
SOLIDOT_OUTPUT = "output/%(name)s.jsonl"
ADDONS = {
    "solidot_spider.addons.DefaultOutput": 0,
    # the shared crawl through Redis, switched on by REDIS_URL (see below)
    "scrapy_sharedcrawl.addon.RedisScheduling": 0,
}
FEED_EXPORT_ENCODING = "utf-8"
#: Write the final stats as JSON to this file ("" for none).
SOLIDOT_STATS_FILE = ""
#: With JOBDIR set, clear its resume state when a crawl finishes (kept on Ctrl-C).
SOLIDOT_JOBDIR_CLEAR_ON_FINISH = True

EXTENSIONS = {
    "solidot_spider.extensions.stats_file.StatsFile": 500,
    "solidot_spider.extensions.jobdir.ClearFinishedJobdir": 500,
    # the shared crawl's registry of live workers (off without REDIS_URL)
    "scrapy_sharedcrawl.workers.WorkerRegistry": 500,
}

# A worker exposes no control surface: no telnet console, and not Scrapy 2.19's RemoteControl
# extension either (it runs Python code sent to it on localhost by anyone holding its token).
# `-s REMOTE_CONTROL_ENABLED=True` turns it back on for a debugging session.
TELNETCONSOLE_ENABLED = False
REMOTE_CONTROL_ENABLED = False
LOG_LEVEL = _env("SOLIDOT_LOG_LEVEL", "INFO")

# --- Shared crawl through Redis: on when REDIS_URL is set --------------------------
# The RedisScheduling add-on then sets SCHEDULER, DUPEFILTER_CLASS and SCHEDULER_SERIALIZER
# (at "addon" priority, so -s REDIS_URL=… works and explicit settings still win).
#: How long a worker holds a request; a dead worker's requests return to the queue after it.
SOLIDOT_LEASE_SECONDS = 120.0
#: Seconds between acknowledgement batches (items are flushed first).
SOLIDOT_ACK_INTERVAL = 1.0
#: Longest pause between reconnect tries while Redis is away (requests are held meanwhile).
SOLIDOT_REDIS_RETRY_MAX = 10.0
#: "set" (exact, 8.9–12.7 bytes per URL) or "bloom" (≈ 3.9 bytes per URL, false positives ≤ the error rate).
SOLIDOT_DUPEFILTER = "set"
SOLIDOT_DUPEFILTER_CAPACITY = 2_000_000
SOLIDOT_DUPEFILTER_ERROR_RATE = 1e-6
#: False: one worker deletes the queue and dupefilter when the crawl is finished; True keeps them
#: (a re-seed then queues nothing already crawled).
SCHEDULER_PERSIST = False
#: Seconds a seeded crawl must show nothing queued or leased anywhere before workers close
#: (the check is atomic: 0 is safe).
SCHEDULER_IDLE_BEFORE_CLOSE = 0
#: Keep workers running when a crawl is finished, waiting for the next `solidot-crawl seed`.
SOLIDOT_CONTINUOUS = "False"
#: Seconds a worker started before any seed waits for one, then closes (finish reason no_seed).
SOLIDOT_WAIT_FOR_SEED = 300.0
#: Longest pause (s) between an idle worker's polls of Redis (from 0.25 s, doubling).
SOLIDOT_IDLE_POLL_MAX = 30.0
SCHEDULER_QUEUE_KEY = "{%(spider)s}:requests"
SCHEDULER_DUPEFILTER_KEY = "{%(spider)s}:seen"
#: Requests/s per host for all workers together (empty: 1 / DOWNLOAD_DELAY; 0: no limit).
SOLIDOT_HOST_RATE = ""
#: Longest robots.txt Crawl-delay honoured (s).
SOLIDOT_CRAWL_DELAY_MAX = 30.0
SOLIDOT_HOST_KEY = "{%(spider)s}:host:%(host)s"
#: Shared stats: key prefix, seconds between pushes, how long they outlive the crawl.
SOLIDOT_STATS_KEY = "{%(spider)s}"
SOLIDOT_STATS_INTERVAL = 5.0
SOLIDOT_STATS_TTL = 604800.0
#: Points of the crawl's time series kept in Redis, one per stats interval (0: none).
SOLIDOT_SERIES_POINTS = 120_000
#: Seconds between worker heartbeats; a worker is gone after 3 missed.
SOLIDOT_WORKER_HEARTBEAT = 5.0
#: This machine's name in the fleet, shown by `status` (empty: the host name); `workers up` sets it.
SOLIDOT_NODE_NAME = ""
#: `solidot-crawl dashboard`: token its pages, JSON and /metrics ask for (required off loopback).
SOLIDOT_DASHBOARD_TOKEN = ""


# --- Any project setting from the environment ------------------------------------------
#: Settings declared above with one of these prefixes can also be given as an environment variable
#: of the same name (a scrapyd node's or a systemd unit's EnvironmentFile): jobs inherit it.
#: ``-s NAME=VALUE`` (on scrapyd: schedule.json's ``setting=NAME=VALUE``) still wins.
_environment_prefixes = ("SOLIDOT_", "REDIS_", "MONGO_", "SCHEDULER_")
globals().update(
    {
        name: os.environ[name].strip()
        for name in [name for name in globals() if name.startswith(_environment_prefixes)]
        if os.environ.get(name, "").strip()
    }
)
