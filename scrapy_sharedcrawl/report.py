"""A project's own part of the operator views (``status``, the dashboard, ``/metrics``).

The framework reads a crawl from Redis alone: its queue, leases, shared stats and
workers. What the crawl's items became (stored in a database, say) and which of the
project's own counters are errors only the project knows: it says so in a subclass of
:class:`CrawlReport`, named by the ``CRAWL_REPORT_CLASS`` setting. The default counts the
items the workers scraped and knows no error counters beyond Scrapy's and the framework's.
"""

from __future__ import annotations

from scrapy.settings import BaseSettings
from scrapy.utils.misc import load_object

from scrapy_sharedcrawl.config import setting
from scrapy_sharedcrawl.defaults import SETTINGS as DEFAULTS


class CrawlReport:
    """What a project adds to the views; built once per command (or dashboard) with its settings and
    the store it was pointed at (``--mongo-uri`` and the like: empty when none)."""

    def __init__(self, settings: BaseSettings, store_uri: str = "") -> None:
        self.settings = settings
        self.store_uri = store_uri

    @classmethod
    def from_settings(cls, settings: BaseSettings, store_uri: str = "") -> CrawlReport:
        """The project's report: ``CRAWL_REPORT_CLASS``, a subclass of this one."""
        path = setting(settings, "CRAWL_REPORT_CLASS", DEFAULTS)
        try:
            report_class = load_object(path)
        except (ImportError, AttributeError, NameError, ValueError) as error:
            raise ValueError(f"CRAWL_REPORT_CLASS {path!r} can't be loaded: {error}") from None
        if not (isinstance(report_class, type) and issubclass(report_class, CrawlReport)):
            raise ValueError(f"CRAWL_REPORT_CLASS {report_class!r} is not a subclass of {cls.__qualname__}")
        report: CrawlReport = report_class(settings, store_uri)
        return report

    def items(self, stats: dict[str, int | float]) -> tuple[int, str]:
        """How many items the crawl has, and where they were counted (shown next to the count)."""
        return int(stats.get("item_scraped_count", 0)), "scraped by the workers"

    def is_error(self, stat: str) -> bool:
        """Whether the project's counter ``stat`` counts errors (Scrapy's and the framework's are known)."""
        return False

    def alert_cause(self, rule: str, subject: str) -> str:
        """The likely cause of an alert (:mod:`.alerts`), in the project's words ("" : none known).

        ``subject``: for ``no_items`` the outcome most pages came to (``http_404``, a name the project
        noted); for ``drop_share`` the drop reason.
        """
        if rule == "no_items" and subject.startswith("http_"):
            return f"the site answered {subject.removeprefix('http_')}: is the crawl's scope right?"
        return ""
