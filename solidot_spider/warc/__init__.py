"""WARC archive of every fetch: the raw pages kept, so a parser fix re-derives the archive offline.

- :mod:`.writer`: per-worker ``.warc.gz`` files (name, rotation, ``warcinfo``, flush and fsync);
- :mod:`.records`: a Scrapy request and response as WARC/1.1 ``request``/``response`` (or
  ``revisit``) and ``metadata`` records;
- :mod:`.recorder`: the downloader middleware that records every response, durable before the
  shared crawl acknowledges its request;
- :mod:`.reader`: the stored responses read back, a torn last record counted and skipped;
- :mod:`.replay`: ``solidot-crawl reparse``'s crawl of the stored responses, without network.
"""
