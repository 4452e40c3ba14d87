"""scrapy_sharedcrawl: one Scrapy crawl shared by any number of workers through one standalone Redis.

Design notes: docs/framework-design.md#package.
"""
