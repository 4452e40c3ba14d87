"""``sharedcrawl dashboard``: a live web page, a JSON API and Prometheus metrics of a shared crawl.

It reads only Redis and the project's store, if any (what ``sharedcrawl status`` reads, plus the
crawl's time series written by the workers, :mod:`scrapy_sharedcrawl.timeseries`),
so it runs anywhere, as many times as wanted, and costs the crawl one read per
refresh whatever the number of browsers.

- :mod:`.state`: one refresh: the crawl's snapshot (progress, state, workers, the project's panel);
- :mod:`.charts`: the time series as chart columns (rates per minute, gauges);
- :mod:`.metrics`: the snapshot in the Prometheus exposition format;
- :mod:`.auth`: the token asked for when bound beyond loopback;
- :mod:`.server`: the aiohttp application and its refresh loop.
"""
