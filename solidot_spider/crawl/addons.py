"""The project's add-ons: the embedded default output, and the User-Agent of ``SOLIDOT_CONTACT_URL``.

:class:`DefaultOutput` adds the default feed only when no ``-o``/``-O`` feed was asked for and no
MongoDB store is configured (one file per worker in a shared crawl); :class:`ContactUserAgent`
rebuilds ``USER_AGENT`` from a ``SOLIDOT_CONTACT_URL`` given on the command line.

Design notes: docs/project-design.md#crawl-addons.
"""

from __future__ import annotations

import os
import re
import socket
from urllib.parse import urlsplit, urlunsplit

from scrapy.settings import Settings

from scrapy_sharedcrawl.config import SettingError, redis_configured
from scrapy_sharedcrawl.redact import redact_uri

#: The crawler's User-Agent: a desktop browser's, naming the project and how to reach its operator.
USER_AGENT_TEMPLATE = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0 Safari/537.36 solidot-crawler/0.1 (+{contact})"
)


def user_agent(contact_url: str) -> str:
    """The User-Agent naming ``contact_url``; a URL that isn't a plain http(s) one is refused (it goes
    into a header of every request), and a user name or password in it is left out (the header goes
    to the site and into every WARC request record).

    >>> user_agent("https://example.org/archive").endswith("(+https://example.org/archive)")
    True
    >>> user_agent("https://me:secret@example.org/").endswith("(+https://example.org/)")
    True
    """
    contact = contact_url.strip()
    if not re.fullmatch(r"https?://[\x21-\x7e]+", contact):
        raise SettingError(
            "SOLIDOT_CONTACT_URL must be an http(s) URL of printable ASCII, "
            f"got {redact_uri(contact_url)[:200]!r}"
        )
    parts = urlsplit(contact)
    public = urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2]))
    return USER_AGENT_TEMPLATE.format(contact=public)


class ContactUserAgent:
    """``USER_AGENT`` rebuilt from ``SOLIDOT_CONTACT_URL`` when that was given above it (``-s``,
    scrapyd's ``setting=``): settings.py builds it at import, from the module's value or the
    environment, which a later ``-s`` can't reach. A ``USER_AGENT`` given as high still wins."""

    def update_settings(self, settings: Settings) -> None:
        priority = settings.getpriority("SOLIDOT_CONTACT_URL") or 0
        contact = str(settings.get("SOLIDOT_CONTACT_URL") or "")
        if contact.strip() and priority > (settings.getpriority("USER_AGENT") or 0):
            settings.set("USER_AGENT", user_agent(contact), priority)


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
