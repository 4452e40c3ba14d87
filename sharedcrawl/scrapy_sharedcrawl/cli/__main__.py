"""``python -m scrapy_sharedcrawl.cli`` — same as the ``sharedcrawl`` command."""

from scrapy_sharedcrawl.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
