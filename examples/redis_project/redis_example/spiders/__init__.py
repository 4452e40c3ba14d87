"""The example's spiders: scrapy-redis's own classes and Scrapy's CrawlSpider, as their users write them."""
