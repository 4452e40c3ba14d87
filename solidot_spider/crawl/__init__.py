"""Scrapy glue: the item pipelines, middlewares, extensions, add-ons, feed exporter, resolver, the
project's signals and the report behind ``CRAWL_REPORT_CLASS``. The spider that drives them is in
:mod:`solidot_spider.spiders` (where ``SPIDER_MODULES`` names it), one layer up: nothing here imports
a spider or the command line (docs/architecture.md)."""
