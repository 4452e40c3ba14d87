"""``python -m solidot_spider.replica`` — same as the ``solidot-replica`` command."""

from solidot_spider.replica.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
