"""Scrapy glue: the item pipelines, middlewares, extensions, add-ons, feed exporter, resolver, signals,
the WARC replay and the report behind ``CRAWL_REPORT_CLASS``; the spider itself is in
:mod:`solidot_spider.spiders`, where ``SPIDER_MODULES`` names it. Builds on the site and the archive,
never on the command line (docs/architecture.md)."""
