"""WARC archive of every fetch, for any project on the framework: the raw pages kept, so a parser
fix can re-derive a crawl's output offline (the add-on installs the recorder; ``WARC_DIR`` turns
it on; warcio is needed only then).

- :mod:`.writer`: per-worker ``.warc.gz`` files (name, rotation, ``warcinfo``, flush and fsync);
- :mod:`.records`: a Scrapy request and response as WARC/1.1 ``request``/``response`` (or
  ``revisit``) and ``metadata`` records;
- :mod:`.recorder`: the downloader middleware that records every response, durable before the
  shared crawl acknowledges its request;
- :mod:`.reader`: the stored responses read back, a torn last record counted and skipped (what a
  project's replay of its pages is built on).
"""
