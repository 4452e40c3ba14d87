"""The embedded default output, as a Scrapy add-on so it yields to ``-o``/``-O`` and to MongoDB.

Scrapy merges a project's ``FEEDS`` with the command line's ``-o``/``-O``
feeds, so a default file declared in the settings module would be written on
every crawl, next to the file the operator asked for. An add-on sees the final
settings: it adds the default file only when no feed was asked for and no
MongoDB store is configured.

In a shared crawl (``REDIS_URL`` set) every worker gets a file of its own
(``output/solidot-<host>-<pid>.jsonl``): several workers on one machine
appending to one file could interleave their lines.
"""

from __future__ import annotations

import os
import re
import socket

from scrapy.settings import Settings

from scrapy_sharedcrawl.config import redis_configured


class DefaultOutput:
    """Items to ``SOLIDOT_OUTPUT`` (JSON Lines, appended) when nothing else stores them."""

    def update_settings(self, settings: Settings) -> None:
        output = settings.get("SOLIDOT_OUTPUT")
        if not output or settings.getdict("FEEDS") or settings.get("MONGO_URI"):
            return
        if redis_configured(settings):
            output = per_worker(str(output))
        feed = {"format": "jsonlines", "encoding": "utf8", "overwrite": False}
        settings.set("FEEDS", {output: feed}, priority="addon")


def per_worker(path: str) -> str:
    """``path`` made this process's own: ``output/solidot.jsonl`` → ``output/solidot-host-1234.jsonl``.

    >>> per_worker("out/%(name)s.jsonl").startswith("out/%(name)s-")
    True
    """
    directory, _, name = path.rpartition("/")
    stem, dot, extension = name.partition(".")
    host = re.sub(r"[^A-Za-z0-9_.-]", "_", socket.gethostname())
    mine = f"{stem}-{host}-{os.getpid()}{dot}{extension}"
    return f"{directory}/{mine}" if directory else mine
