"""``solidot-crawl``: the operator's command-line tool.

Each subcommand lives in its own module and registers itself with
:func:`main`'s parser; settings come from the project's settings module (and
so from the same environment variables as the crawl).
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from scrapy.settings import Settings

from scrapy_sharedcrawl.cli import dashboard, run_command, status, workers
from scrapy_sharedcrawl.closed_pipe import ends_quietly_on_closed_pipe
from scrapy_sharedcrawl.legacy import apply_legacy_names
from solidot_spider.cli import export, reparse, seed
from solidot_spider.cli.target import SOLIDOT


def project_settings() -> Settings:
    """The project's settings, environment variables applied, as ``scrapy crawl`` sees them."""
    settings = Settings()
    settings.setmodule("solidot_spider.settings", priority="project")
    apply_legacy_names(settings)  # what the add-on does for a crawl: tools build no crawler
    return settings


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="solidot-crawl", description="Operate solidot-crawler.")
    commands = parser.add_subparsers(dest="command", required=True)
    dashboard.register(commands, SOLIDOT)
    export.register(commands)
    reparse.register(commands)
    seed.register(commands)
    status.register(commands, SOLIDOT)
    workers.register(commands, SOLIDOT)
    return parser


@ends_quietly_on_closed_pipe
def main(argv: Sequence[str] | None = None) -> int:
    options = build_parser().parse_args(argv)
    return run_command("solidot-crawl", options, project_settings())
