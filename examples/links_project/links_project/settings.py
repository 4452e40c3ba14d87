"""Settings of a plain Scrapy project that uses the shared crawl as a third party would: one add-on.

With ``REDIS_URL`` set (``-s`` or the environment) its workers share one crawl; without, it is an
ordinary single-process Scrapy crawl.
"""

BOT_NAME = "links_project"
SPIDER_MODULES = ["links_project.spiders"]
ADDONS = {"scrapy_sharedcrawl.addon.SharedCrawl": 0}
ROBOTSTXT_OBEY = False
TELNETCONSOLE_ENABLED = False
REMOTE_CONTROL_ENABLED = False
FEED_EXPORT_ENCODING = "utf-8"
