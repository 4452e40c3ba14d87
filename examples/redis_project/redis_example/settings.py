"""A scrapy-redis project moved onto the shared crawl: the ``ADDONS`` line replaces scrapy-redis's
``SCHEDULER`` and ``DUPEFILTER_CLASS``; spiders and pipelines are scrapy-redis's own, unchanged.

``REDIS_URL`` (here, with ``-s`` or in the environment) switches the shared crawl on; without it,
each ``scrapy crawl`` is an ordinary single-process crawl.
"""

import os

BOT_NAME = "redis_example"
SPIDER_MODULES = ["redis_example.spiders"]

ADDONS = {"scrapy_sharedcrawl.addon.SharedCrawl": 0}
# scrapy-redis's pipeline: every item as JSON in the Redis list <spider>:items
ITEM_PIPELINES = {"scrapy_redis.pipelines.RedisPipeline": 300}
REDIS_URL = os.environ.get("REDIS_URL")

ROBOTSTXT_OBEY = False
TELNETCONSOLE_ENABLED = False
CONCURRENT_REQUESTS = 4
LOG_LEVEL = "INFO"
