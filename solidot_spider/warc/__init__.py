"""``solidot-crawl reparse``: the stored story pages through the crawl's parser and pipelines again.

The WARC files are written by the framework's recorder and read by its reader
(:mod:`scrapy_sharedcrawl.warc`); :mod:`.replay` is Solidot's own part, the crawl of the stored
responses without network.
"""
