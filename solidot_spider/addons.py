"""The embedded default output, as a Scrapy add-on so it yields to ``-o``/``-O`` and to MongoDB.

Scrapy merges a project's ``FEEDS`` with the command line's ``-o``/``-O``
feeds, so a default file declared in the settings module would be written on
every crawl, next to the file the operator asked for. An add-on sees the final
settings: it adds the default file only when no feed was asked for and no
MongoDB store is configured.
"""

from __future__ import annotations

from scrapy.settings import Settings


class DefaultOutput:
    """Items to ``SOLIDOT_OUTPUT`` (JSON Lines, appended) when nothing else stores them."""

    def update_settings(self, settings: Settings) -> None:
        output = settings.get("SOLIDOT_OUTPUT")
        if not output or settings.getdict("FEEDS") or settings.get("MONGO_URI"):
            return
        feed = {"format": "jsonlines", "encoding": "utf8", "overwrite": False}
        settings.set("FEEDS", {output: feed}, priority="addon")
