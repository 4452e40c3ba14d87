"""Scrapy settings of the solidot-crawler project: only what differs from Scrapy's and the
framework's defaults.

The project's own settings and their defaults are declared once, in :mod:`solidot_spider.defaults`,
and taken from there below; each of them, and each of the framework's settings (and their old
names), can also be given as an environment variable of the same name, and ``SOLIDOT_LOG_LEVEL``
sets ``LOG_LEVEL``. ``-s NAME=VALUE`` on the command line (schedule.json's ``setting=`` on scrapyd)
overrides both.
"""

from __future__ import annotations

# lower-case names: Scrapy reads only the upper-case ones of this module as settings
from scrapy_sharedcrawl import defaults as shared_crawl_defaults
from solidot_spider import defaults as _project
from solidot_spider import legacy as _legacy
from solidot_spider.crawl.addons import user_agent as _user_agent

#: The project's settings (solidot_spider/defaults.py, listed in docs/settings.md): their declared
#: defaults, or the environment variable of the same name (a scrapyd node's or a systemd unit's
#: EnvironmentFile: jobs inherit it).
globals().update(_project.SETTINGS)
globals().update(_project.from_environment(n for n, d in _project.DECLARED.items() if d.environment))

BOT_NAME = "solidot_spider"
SPIDER_MODULES = ["solidot_spider.spiders"]
NEWSPIDER_MODULE = "solidot_spider.spiders"

# --- The site --------------------------------------------------------------
#: SOLIDOT_RESOLVE's "DOMAIN=ADDRESS,…" overrides, in the crawler's own resolver.
TWISTED_DNS_RESOLVER = "solidot_spider.crawl.resolver.OverrideResolver"

# --- Politeness (defaults for the real site; tests and benchmarks turn them down)
#: Names SOLIDOT_CONTACT_URL (-s SOLIDOT_CONTACT_URL rebuilds it: addons.ContactUserAgent).
USER_AGENT = _user_agent(globals()["SOLIDOT_CONTACT_URL"])
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
# Extra fetches of a page cut off before </html>: SOLIDOT_TRUNCATED_RETRIES (defaults.py).
# Longest Retry-After honoured and the pause after errors in a row: RETRY_AFTER_MAX,
# HOST_BACKOFF_BASE and HOST_BACKOFF_MAX (scrapy_sharedcrawl.defaults).

# --- Item pipelines: clean → validate → deduplicate → store ----------------------
ITEM_PIPELINES = {
    "solidot_spider.crawl.pipelines.clean.CleanPipeline": 100,
    "solidot_spider.crawl.pipelines.validate.ValidatePipeline": 200,
    "solidot_spider.crawl.pipelines.dedupe.DedupePipeline": 300,
    "solidot_spider.crawl.pipelines.store.MongoStorePipeline": 800,
}
# Their settings (SOLIDOT_MAX_BODY_BYTES, SOLIDOT_DEDUPE_*, the store's MONGO_*: off while MONGO_URI
# is empty) are in defaults.py. With REDIS_URL (the shared crawl's switch) set, dedupe keeps its
# content hashes in that Redis too.

# The shared-crawl add-on adds its host backoff (560) and cluster rate limit (950).
DOWNLOADER_MIDDLEWARES = {
    "solidot_spider.crawl.middlewares.charset.SiteCharsetMiddleware": 600,
}

# --- WARC: the raw pages, every fetch (off while WARC_DIR is empty) ---------------------
# The add-on installs the framework's recorder (890, below the HTTP cache); its settings WARC_DIR,
# WARC_MAX_SIZE, WARC_REVISITS, WARC_COOKIES are declared in scrapy_sharedcrawl/defaults.py.
# `solidot-crawl reparse` reads the files back (solidot_spider/cli/replay.py).
#: File names: PREFIX-STARTED-SERIAL-PID~HOST.warc.gz (the framework's default: BOT_NAME). The old
#: name in the environment is read here: declared at the same priority, WARC_PREFIX would beat it.
WARC_PREFIX = _project.environment_value("SOLIDOT_WARC_PREFIX", "solidot")

# --- Output: the embedded default writes JSON Lines -----------------------------
# Where items go when neither -o/-O nor MONGO_URI says otherwise: SOLIDOT_OUTPUT (defaults.py).
ADDONS = {
    "solidot_spider.crawl.addons.DefaultOutput": 0,
    "solidot_spider.crawl.addons.ContactUserAgent": 0,
    # the shared crawl through Redis, switched on by REDIS_URL (or REDIS_HOST/_PORT, REDIS_PARAMS; see below)
    "scrapy_sharedcrawl.addon.SharedCrawl": 0,
}
FEED_EXPORT_ENCODING = "utf-8"
#: JSON Lines feeds written without itemadapter's per-field detour (the same bytes: feed.py).
FEED_EXPORTERS = dict.fromkeys(
    ("jsonlines", "jsonl", "jl"), "solidot_spider.crawl.feed.StoryJsonLinesExporter"
)
# The stats file (SOLIDOT_STATS_FILE) and JOBDIR's clearing (SOLIDOT_JOBDIR_CLEAR_ON_FINISH).
EXTENSIONS = {
    "solidot_spider.crawl.extensions.stats_file.StatsFile": 500,
    "solidot_spider.crawl.extensions.jobdir.ClearFinishedJobdir": 500,
}

# A worker exposes no control surface: no telnet console, and not Scrapy 2.19's RemoteControl
# extension either (it runs Python code sent to it on localhost by anyone holding its token).
# `-s REMOTE_CONTROL_ENABLED=True` turns it back on for a debugging session.
TELNETCONSOLE_ENABLED = False
REMOTE_CONTROL_ENABLED = False
LOG_LEVEL = _project.environment_value("SOLIDOT_LOG_LEVEL", "INFO")

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
# SOLIDOT_REFRESH_*: in defaults.py, documented in docs/refreshing.md.
# SOLIDOT_DASHBOARD_TOKEN, the old name of the framework's DASHBOARD_TOKEN (one of RENAMED_SETTINGS
# below): still read, with a deprecation warning, from -s or the environment, as DASHBOARD_TOKEN itself.
#: The shared crawl's settings by their names in solidot-crawler 0.1 (solidot_spider/legacy.py): the
#: framework's add-on and commands carry each one set over to its new name, with a deprecation warning.
RENAMED_SETTINGS = dict(_legacy.RENAMED)
#: Stories in MongoDB and the project's error counters in status, the dashboard and /metrics.
CRAWL_REPORT_CLASS = "solidot_spider.crawl.report.ArchiveReport"


# --- The shared crawl's settings from the environment ------------------------------------------
#: The framework's settings (and their old names, still read) can be given as environment variables
#: of the same name too; ``-s NAME=VALUE`` (on scrapyd: ``setting=NAME=VALUE``) still wins.
globals().update(_project.from_environment([*shared_crawl_defaults.SETTINGS, *_legacy.RENAMED]))
