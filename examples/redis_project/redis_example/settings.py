"""A scrapy-redis project moved onto the shared crawl: the ``ADDONS`` line replaces scrapy-redis's
``SCHEDULER`` and ``DUPEFILTER_CLASS``; spiders and pipelines are scrapy-redis's own, unchanged.

A Redis named as scrapy-redis users name it (``REDIS_URL``, ``REDIS_HOST``/``REDIS_PORT`` or
``REDIS_PARAMS``; here, with ``-s`` or in the environment) switches the shared crawl on; without one,
each ``scrapy crawl`` is an ordinary single-process crawl.
"""

BOT_NAME = "redis_example"
SPIDER_MODULES = ["redis_example.spiders"]

ADDONS = {"scrapy_sharedcrawl.addon.SharedCrawl": 0}
# scrapy-redis's pipeline: every item as JSON in the Redis list <spider>:items
ITEM_PIPELINES = {"scrapy_redis.pipelines.RedisPipeline": 300}

ROBOTSTXT_OBEY = False
TELNETCONSOLE_ENABLED = False
CONCURRENT_REQUESTS = 4
LOG_LEVEL = "INFO"
