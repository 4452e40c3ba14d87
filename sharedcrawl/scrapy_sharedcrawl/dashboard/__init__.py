"""``sharedcrawl dashboard``: a live web page, a JSON API and Prometheus metrics of a shared crawl.

It reads only Redis and the project's store, if any (what ``sharedcrawl status`` reads, plus the
crawl's time series written by the workers, :mod:`scrapy_sharedcrawl.timeseries`),
so it runs anywhere, as many times as wanted, and costs the crawl one read per
refresh whatever the number of browsers.

Design notes: docs/framework-design.md#dashboard.
"""
