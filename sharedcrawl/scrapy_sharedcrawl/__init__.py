"""scrapy_sharedcrawl: one Scrapy crawl shared by any number of workers through one standalone Redis.

Design notes: docs/framework-design.md#package.
"""

#: The distribution's version (sharedcrawl/pyproject.toml reads it from here).
__version__ = "0.1.0"
