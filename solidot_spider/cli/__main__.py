"""``python -m solidot_spider.cli`` — same as the ``solidot-crawl`` command."""

from solidot_spider.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
