"""Command-line values shared by the subcommands."""

from __future__ import annotations

from collections.abc import Iterable


def assignments(values: Iterable[str]) -> dict[str, str]:
    """``NAME=VALUE`` strings (``-s``/``-a`` as ``scrapy crawl`` takes them) as a dict.

    >>> assignments(["CONCURRENT_REQUESTS=8", "sids=1-5"])
    {'CONCURRENT_REQUESTS': '8', 'sids': '1-5'}
    """
    result = {}
    for assignment in values:
        name, sep, value = assignment.partition("=")
        if not sep or not name.strip():
            raise ValueError(f"expected NAME=VALUE, got {assignment!r}")
        result[name.strip()] = value
    return result
