"""``sharedcrawl``: the operator's commands for any Scrapy project on the shared crawl.

Run from a project's directory (as ``scrapy`` is: ``scrapy.cfg`` or ``SCRAPY_SETTINGS_MODULE``
finds its settings). Each command lives in its own module and registers itself with the parser;
a project's own tool adds its commands and defaults to the same modules (``register`` with its
:class:`~.options.CrawlDefaults`, then :func:`run_command`).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from scrapy.settings import Settings
from scrapy.utils.project import get_project_settings

from scrapy_sharedcrawl.addon import settings_from_environment
from scrapy_sharedcrawl.cli import dashboard, seed, status, workers
from scrapy_sharedcrawl.closed_pipe import ends_quietly_on_closed_pipe
from scrapy_sharedcrawl.fleet.api import ScrapydError
from scrapy_sharedcrawl.legacy import apply_legacy_names
from scrapy_sharedcrawl.reading import printable


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="sharedcrawl", description="Operate a shared Scrapy crawl.")
    commands = parser.add_subparsers(dest="command", required=True)
    dashboard.register(commands)
    seed.register(commands)
    status.register(commands)
    workers.register(commands)
    return parser


def run_command(prog: str, options: argparse.Namespace, settings: Settings) -> int:
    """Run the parsed command on the project's settings as a crawl's add-on leaves them (tools build no
    crawler: the Redis and WARC settings from the environment, old names carried over); an expected
    failure (a bad ``RENAMED_SETTINGS`` too) is one line on stderr and exit status 2."""
    try:
        settings_from_environment(settings)
        apply_legacy_names(settings)
        return int(options.run(options, settings))
    except BrokenPipeError:
        raise  # the output's reader has gone: no error to tell (see closed_pipe)
    except (OSError, ValueError, ScrapydError) as error:
        # an error may quote what a node, Redis or a page said: printed without its terminal escapes
        shown = "\n".join(printable(line) for line in str(error).split("\n"))
        print(f"{prog} {options.command}: {shown}", file=sys.stderr)
        return 2


@ends_quietly_on_closed_pipe
def main(argv: Sequence[str] | None = None) -> int:
    options = build_parser().parse_args(argv)
    return run_command("sharedcrawl", options, get_project_settings())
