"""A project's own part of the operator views (``status``, the dashboard, ``/metrics``).

A project subclasses :class:`CrawlReport` (named by ``CRAWL_REPORT_CLASS``) to count its items in its
own store, name its error counters and word the likely causes of alerts; its panel is a
:class:`ProjectView` drawn from data alone. A report that raises costs its panel only.

Design notes: docs/framework-design.md#report.
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

from scrapy.settings import BaseSettings
from scrapy.utils.misc import load_object

from scrapy_sharedcrawl.config import setting
from scrapy_sharedcrawl.defaults import SETTINGS as DEFAULTS
from scrapy_sharedcrawl.redact import redact_uri

logger = logging.getLogger(__name__)


class CrawlReport:
    """What a project adds to the views; built once per command (or dashboard) with its settings and
    the store it was pointed at (``--mongo-uri`` and the like: empty when none)."""

    #: The start of every metric :meth:`view` names (the framework's own start ``sharedcrawl_``).
    metric_prefix: ClassVar[str] = ""

    def __init__(self, settings: BaseSettings, store_uri: str = "") -> None:
        self.settings = settings
        self.store_uri = store_uri
        #: The last failure of :meth:`view` (logged once per distinct failure).
        self.last_error: str | None = None

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

    def view(self, stats: dict[str, Number], crawl: dict[str, Any]) -> ProjectView | None:
        """The project's panel and metrics for one reading (None: none). ``stats``: the shared
        counters; ``crawl``: the reading's ``spider``, ``state``, ``started_at``, ``finished_at``,
        ``items`` and ``items_source``. Called once per refresh of the dashboard or ``status``."""
        return None


# -- the project's panel and metrics: the dashboard, /metrics and status draw them from data alone ------

#: A figure's or table's key (the page's element id): lower-case words and dashes.
_KEY = re.compile(r"^[a-z][a-z0-9-]{0,40}$")
#: A metric's name as Prometheus allows it.
_METRIC_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]{0,100}$")
#: Longest text a panel shows (a label, a title, a link's text).
MAX_TEXT = 300
#: Most rows a table, and most entries a list of links, show (a table's rest is summed as ``other``).
MAX_ROWS = 30

Number = int | float


@dataclass(frozen=True)
class Figure:
    """One number (or None: unknown) with its label; ``key`` is its id on the page."""

    key: str
    label: str
    value: Number | None


@dataclass(frozen=True)
class Table:
    """Counts by name (a reason, an outcome), drawn largest first; at most :data:`MAX_ROWS` rows."""

    key: str
    title: str
    rows: Mapping[str, Number]


@dataclass(frozen=True)
class Link:
    """An entry of a panel's list: its text, an http(s) address (any other is dropped) and a note."""

    text: str
    url: str | None = None
    note: str = ""


@dataclass(frozen=True)
class Panel:
    """The project's part of the page and of ``status``: figures, tables and one list of links."""

    title: str
    figures: Sequence[Figure] = ()
    tables: Sequence[Table] = ()
    links_title: str = ""
    links: Sequence[Link] = ()
    #: A warning the page shows (a store unreachable…), "" for none.
    warning: str = ""


@dataclass(frozen=True)
class ProjectMetric:
    """A metric of the project's own on ``/metrics``; its name starts with the report's
    :attr:`CrawlReport.metric_prefix`. ``label``: the one label ``values`` are keyed by ("" : none,
    ``values`` is then ``{"": value}``); the dashboard keeps at most :data:`MAX_ROWS` label values."""

    name: str
    documentation: str
    values: Mapping[str, Number]
    label: str = ""
    counter: bool = False


@dataclass(frozen=True)
class ProjectView:
    """What :meth:`CrawlReport.view` returns: the panel (None: none) and the project's metrics."""

    panel: Panel | None = None
    metrics: Sequence[ProjectMetric] = field(default_factory=tuple)


def read_view(report: CrawlReport, stats: dict[str, Number], crawl: dict[str, Any]) -> dict[str, Any]:
    """The project's view as JSON (``status --json``'s ``project``, the dashboard's): checked, cut to
    size; a report that raises costs its panel only: ``error`` says so, and the log once, redacted (no
    traceback: its frames may hold a store's URI with its password)."""
    try:
        view = report.view(stats, crawl)
        if view is not None and not isinstance(view, ProjectView):
            raise TypeError(f"view() returned {type(view).__name__}, not a ProjectView")
        result = view_json(view, report.metric_prefix)
    except Exception as error:  # the project's code: any failure is its panel's only
        message = f"{type(error).__name__}: {redact_uri(str(error))[:MAX_TEXT]}"
        if report.last_error != message:
            logger.error("The project's report %s failed: %s", type(report).__qualname__, message)
        report.last_error = message
        return {"panel": None, "metrics": [], "error": f"the project's panel failed ({message})"}
    report.last_error = None
    return result


def view_json(view: ProjectView | None, prefix: str) -> dict[str, Any]:
    """``view`` as the page and ``status --json`` take it; ValueError for a name no page or Prometheus
    could take (a key that is no id, a metric outside ``prefix``)."""
    if view is None:
        return {"panel": None, "metrics": [], "error": None}
    panel = None
    if view.panel is not None:
        p = view.panel
        panel = {
            "title": _cut(p.title),
            "figures": [
                {"key": _key(f.key), "label": _cut(f.label), "value": _number(f.value)} for f in p.figures
            ],
            "tables": [{"key": _key(t.key), "title": _cut(t.title), "rows": _rows(t.rows)} for t in p.tables],
            "links_title": _cut(p.links_title),
            "links": [
                {
                    "text": _cut(link.text),
                    "url": link.url if isinstance(link.url, str) and _HTTP.match(link.url) else None,
                    "note": _cut(link.note),
                }
                for link in list(p.links)[:MAX_ROWS]
            ],
            "warning": _cut(p.warning) or None,
        }
    metrics = []
    for metric in view.metrics:
        if not (prefix and metric.name.startswith(prefix) and _METRIC_NAME.match(metric.name)):
            raise ValueError(f"metric {metric.name[:80]!r} is not under the report's prefix {prefix!r}")
        if metric.label and not _METRIC_NAME.match(metric.label):
            raise ValueError(f"metric {metric.name!r}: label {metric.label[:80]!r} is no label name")
        values = {_cut(str(k)): _number(v) for k, v in metric.values.items()}
        metrics.append(
            {
                "name": metric.name,
                "documentation": _cut(metric.documentation),
                "type": "counter" if metric.counter else "gauge",
                "label": metric.label,
                "values": {k: v for k, v in values.items() if v is not None},
            }
        )
    return {"panel": panel, "metrics": metrics, "error": None}


_HTTP = re.compile(r"^https?://", re.IGNORECASE)


def _key(key: str) -> str:
    if not isinstance(key, str) or not _KEY.match(key):
        raise ValueError(f"panel key {str(key)[:80]!r} is not lower-case words and dashes")
    return key


def _cut(text: object) -> str:
    return str(text)[:MAX_TEXT] if text is not None else ""


def _number(value: object) -> Number | None:
    """A finite int or float (a bool is no number), else None."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return value if math.isfinite(value) else None


def _rows(rows: Mapping[str, Number]) -> dict[str, Number]:
    """At most :data:`MAX_ROWS` rows, largest first, the rest summed as ``other``."""
    counts = {_cut(name): number for name, value in rows.items() if (number := _number(value)) is not None}
    ranked = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    kept = dict(ranked[: MAX_ROWS - 1]) if len(ranked) > MAX_ROWS else dict(ranked)
    if rest := ranked[MAX_ROWS - 1 :] if len(ranked) > MAX_ROWS else []:
        kept["other"] = kept.get("other", 0) + sum(value for _, value in rest)
    return kept
