"""``solidot-crawl``: the operator's command-line tool.

Each subcommand lives in its own module and registers itself with
:func:`main`'s parser; settings come from the project's settings module (and
so from the same environment variables as the crawl).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from scrapy.settings import Settings

from scrapy_sharedcrawl.legacy import apply_legacy_names
from scrapy_sharedcrawl.reading import printable
from solidot_spider.cli import dashboard, export, reparse, seed, status, workers
from solidot_spider.closed_pipe import ends_quietly_on_closed_pipe
from solidot_spider.fleet.api import ScrapydError


def project_settings() -> Settings:
    """The project's settings, environment variables applied, as ``scrapy crawl`` sees them."""
    settings = Settings()
    settings.setmodule("solidot_spider.settings", priority="project")
    apply_legacy_names(settings)  # what the add-on does for a crawl: tools build no crawler
    return settings


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="solidot-crawl", description="Operate solidot-crawler.")
    commands = parser.add_subparsers(dest="command", required=True)
    dashboard.register(commands)
    export.register(commands)
    reparse.register(commands)
    seed.register(commands)
    status.register(commands)
    workers.register(commands)
    return parser


@ends_quietly_on_closed_pipe
def main(argv: Sequence[str] | None = None) -> int:
    options = build_parser().parse_args(argv)
    try:
        return int(options.run(options, project_settings()))
    except BrokenPipeError:
        raise  # the output's reader has gone: no error to tell (see closed_pipe)
    except (OSError, ValueError, ScrapydError) as error:
        # an error may quote what a node, Redis or a page said: printed without its terminal escapes
        shown = "\n".join(printable(line) for line in str(error).split("\n"))
        print(f"solidot-crawl {options.command}: {shown}", file=sys.stderr)
        return 2
