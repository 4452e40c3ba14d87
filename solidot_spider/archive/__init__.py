"""The archive: everything MongoDB (the store's config and client, the story documents, the
content-hash indexes, the refresh schedules), the refresh policy, and exporting.

Builds on the site's knowledge only; the Scrapy glue (:mod:`solidot_spider.crawl`) drives it, and
tools or tests can use it on their own (docs/architecture.md).
"""
