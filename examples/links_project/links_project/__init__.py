"""A Scrapy project that is not Solidot, on the shared crawl: proof that the framework is generic."""
