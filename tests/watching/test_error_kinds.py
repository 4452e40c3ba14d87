"""The dashboard's error counters by kind (``error_kinds``), checked against sums worked out by hand:
the browser test compares /metrics with this function, so it needs a reference of its own."""

from __future__ import annotations

from scrapy_sharedcrawl.dashboard.state import error_kinds
from scrapy_sharedcrawl.timeseries import series_fields
from solidot_spider.cli import project_settings

STATS: dict[str, int | float] = {
    "retry/reason_count/503 Service Unavailable": 4,
    "retry/reason_count/twisted.internet.error.TimeoutError": 2,
    "retry/reason_count": 100,  # not under the prefix "retry/reason_count/"
    "downloader/exception_type_count/builtins.ConnectionRefusedError": 3,
    "retry/max_reached": 1,
    "retry/max_reached_later": 50,  # a name, not a prefix: only the exact stat counts
    "spider_exceptions/ValueError": 1,
    "log_count/ERROR": 5,
    "log_count/CRITICAL": 1,
    "log_count/WARNING": 9,
    "scheduler/dead": 2,
    "scheduler/deadline": 7,
    "scheduler/refused/host": 1,
    "scheduler/refused/meta": 2,
    "solidot/story_failed/404": 2,
    "solidot/story_failed/timeout": 1,
    "solidot/dropped/no_title": 8,  # "dropped" is a field of the series, not an error kind
    "item_scraped_count": 40,
}


def test_error_kinds_sum_the_project_fields_stats_by_kind() -> None:
    kinds = error_kinds(STATS, series_fields(project_settings()))
    assert kinds == {
        "http": 4 + 2,
        "network": 3,
        "gave_up": 1,
        "spider": 1,
        "log": 5 + 1,
        "dead": 2,
        "refused": 1 + 2,
        "failed": 2 + 1,  # the project's own kind (STATS_SERIES_FIELDS)
    }


def test_every_kind_is_shown_even_at_zero_and_only_error_fields_are_kinds() -> None:
    fields = {"err_a": ("x/",), "err_b": ("y", "z/"), "pages": ("x/1",)}
    assert error_kinds({}, fields) == {"a": 0, "b": 0}
    assert error_kinds({"x/1": 2, "x/2": 3, "y": 1, "yy": 5, "z/q": 4, "z": 6}, fields) == {"a": 5, "b": 5}
