"""Scrapy settings of the solidot-crawler project.

Every project setting is declared here with its default; each ``SOLIDOT_*``,
``REDIS_*``, ``MONGO_*`` and ``SCHEDULER_*`` one can also be given as an
environment variable of the same name (see the end of this module), and
``SOLIDOT_LOG_LEVEL`` sets ``LOG_LEVEL``. ``-s NAME=VALUE`` on the command line
(schedule.json's ``setting=`` on scrapyd) overrides both.
"""

from __future__ import annotations

import os

# lower-case names: Scrapy reads only the upper-case ones of this module as settings
from scrapy_sharedcrawl import defaults as shared_crawl_defaults
from solidot_spider import legacy as _legacy
from solidot_spider.addons import user_agent as _user_agent
from solidot_spider.refresh import policy as refresh_policy


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
#: Contact URL in the User-Agent (-s SOLIDOT_CONTACT_URL rebuilds it: addons.ContactUserAgent).
SOLIDOT_CONTACT_URL = _env("SOLIDOT_CONTACT_URL", "https://github.com/solidot-crawler/solidot-crawler")
USER_AGENT = _user_agent(SOLIDOT_CONTACT_URL)
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
# Longest Retry-After honoured and the pause after errors in a row: RETRY_AFTER_MAX,
# HOST_BACKOFF_BASE and HOST_BACKOFF_MAX (scrapy_sharedcrawl.defaults).

# --- Item pipelines: clean → validate → deduplicate → store ----------------------
ITEM_PIPELINES = {
    "solidot_spider.pipelines.clean.CleanPipeline": 100,
    "solidot_spider.pipelines.validate.ValidatePipeline": 200,
    "solidot_spider.pipelines.dedupe.DedupePipeline": 300,
    "solidot_spider.pipelines.store.MongoStorePipeline": 800,
}
#: Largest story body kept (UTF-8 bytes of body_html or body_text); larger ones are dropped.
SOLIDOT_MAX_BODY_BYTES = 2_000_000
# REDIS_URL (the shared crawl's switch, scrapy_sharedcrawl.defaults): dedupe keeps its content
# hashes in that Redis too when it is set.
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

# The shared-crawl add-on adds its host backoff (560) and cluster rate limit (950).
DOWNLOADER_MIDDLEWARES = {
    "solidot_spider.middlewares.charset.SiteCharsetMiddleware": 600,
}

# --- WARC: the raw pages, every fetch (off while WARC_DIR is empty) ---------------------
# The add-on installs the framework's recorder (890, below the HTTP cache); its settings WARC_DIR,
# WARC_MAX_SIZE, WARC_REVISITS, WARC_COOKIES are declared in scrapy_sharedcrawl/defaults.py.
# `solidot-crawl reparse` reads the files back (solidot_spider/warc/replay.py).
#: File names: PREFIX-STARTED-SERIAL-PID~HOST.warc.gz (the framework's default: BOT_NAME). The old
#: name in the environment is read here: declared at the same priority, WARC_PREFIX would beat it.
WARC_PREFIX = _env("SOLIDOT_WARC_PREFIX", "solidot")

# --- Output: the embedded default writes JSON Lines -----------------------------
#: Where items go when neither -o/-O nor MONGO_URI says otherwise ("" turns the file off).
SOLIDOT_OUTPUT = "output/%(name)s.jsonl"
ADDONS = {
    "solidot_spider.addons.DefaultOutput": 0,
    "solidot_spider.addons.ContactUserAgent": 0,
    # the shared crawl through Redis, switched on by REDIS_URL (or REDIS_HOST/_PORT, REDIS_PARAMS; see below)
    "scrapy_sharedcrawl.addon.SharedCrawl": 0,
}
FEED_EXPORT_ENCODING = "utf-8"
#: JSON Lines feeds written without itemadapter's per-field detour (the same bytes: feed.py).
FEED_EXPORTERS = dict.fromkeys(("jsonlines", "jsonl", "jl"), "solidot_spider.feed.StoryJsonLinesExporter")
#: Write the final stats as JSON to this file ("" for none).
SOLIDOT_STATS_FILE = ""
#: With JOBDIR set, clear its resume state when a crawl finishes (kept on Ctrl-C).
SOLIDOT_JOBDIR_CLEAR_ON_FINISH = True

EXTENSIONS = {
    "solidot_spider.extensions.stats_file.StatsFile": 500,
    "solidot_spider.extensions.jobdir.ClearFinishedJobdir": 500,
}

# A worker exposes no control surface: no telnet console, and not Scrapy 2.19's RemoteControl
# extension either (it runs Python code sent to it on localhost by anyone holding its token).
# `-s REMOTE_CONTROL_ENABLED=True` turns it back on for a debugging session.
TELNETCONSOLE_ENABLED = False
REMOTE_CONTROL_ENABLED = False
LOG_LEVEL = _env("SOLIDOT_LOG_LEVEL", "INFO")

# --- Shared crawl through Redis: on when REDIS_URL is set --------------------------
# The SharedCrawl add-on then sets SCHEDULER, DUPEFILTER_CLASS, SCHEDULER_SERIALIZER and
# STATS_CLASS (at "addon" priority, so -s REDIS_URL=… works and explicit settings still win).
# Its settings (leases, acknowledgements, the dupefilter, finishing, shared stats, the worker
# registry, the cluster-wide host rate) and their defaults are declared once, in
# scrapy_sharedcrawl/defaults.py, and listed in docs/settings.md; set here only what differs.
#: How an operator seeds this crawl (named by a worker waiting for a seed).
SCHEDULER_SEED_HINT = "`solidot-crawl seed`"
#: The store's buffer, shown per worker by status and the dashboard.
WORKER_BUFFER_STAT = "solidot/mongo/buffered"
#: The project's own fields of the crawl's time series (the dashboard's charts): stories lost for
#: good, and items or pages dropped.
STATS_SERIES_FIELDS = {
    "err_failed": ["solidot/story_failed/"],
    "dropped": ["solidot/dropped/", "solidot/validate/dropped/"],
}

# --- Keeping the archive current: the refresh policy (`seed --refresh`, `-a refresh=true`) -----
#: SOLIDOT_REFRESH_MIN_INTERVAL, _MAX_INTERVAL, _AGE_FACTOR, _GROW, _SHRINK, _MAX_PER_RUN,
#: _GAP_RETRIES, _GAP_INTERVAL, _CLAIM, _NOW: declared with their defaults and meanings in
#: solidot_spider/refresh/policy.py (DEFAULTS), documented in docs/refreshing.md.
globals().update(refresh_policy.DEFAULTS)
#: The old name of the framework's DASHBOARD_TOKEN (one of RENAMED_SETTINGS below): still read, with a
#: deprecation warning, from -s or the environment, as DASHBOARD_TOKEN itself.
SOLIDOT_DASHBOARD_TOKEN = ""
#: The shared crawl's settings by their names in solidot-crawler 0.1 (solidot_spider/legacy.py): the
#: framework's add-on and commands carry each one set over to its new name, with a deprecation warning.
RENAMED_SETTINGS = dict(_legacy.RENAMED)
#: Stories in MongoDB and the project's error counters in status, the dashboard and /metrics.
CRAWL_REPORT_CLASS = "solidot_spider.report.ArchiveReport"


# --- Any project setting from the environment ------------------------------------------
#: Settings declared above with one of these prefixes can also be given as an environment variable
#: of the same name (a scrapyd node's or a systemd unit's EnvironmentFile): jobs inherit it.
#: ``-s NAME=VALUE`` (on scrapyd: schedule.json's ``setting=NAME=VALUE``) still wins.
#: The shared crawl's settings (and their old names, still read) can be given the same way.
_environment_prefixes = ("SOLIDOT_", "REDIS_", "MONGO_", "SCHEDULER_")
_environment_names = [
    *(name for name in globals() if name.startswith(_environment_prefixes)),
    *shared_crawl_defaults.SETTINGS,
    *_legacy.RENAMED,
]
globals().update(
    {name: os.environ[name].strip() for name in _environment_names if os.environ.get(name, "").strip()}
)
