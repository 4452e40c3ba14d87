"""What ``solidot-crawl``'s commands act on when not told: the Solidot crawl, as scrapy.cfg deploys it."""

from scrapy_sharedcrawl.cli.options import CrawlDefaults

SOLIDOT = CrawlDefaults(project="solidot_spider", spider="solidot")
