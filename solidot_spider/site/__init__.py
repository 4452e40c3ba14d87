"""Site knowledge: Solidot's URLs, markup and text, parsed into story items.

Pure (HTML in, a ``Story`` out): nothing here imports Scrapy, MongoDB or another layer of the
project (docs/architecture.md; ``lint-imports`` checks it).
"""
