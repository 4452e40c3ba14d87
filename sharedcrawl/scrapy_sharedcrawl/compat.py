"""Every private Scrapy API the project borrows, in one place, behind one version check.

Scrapy 2.19 has no public way to see when the engine is done with a request, to
reach the engine while a component opens, to pause one downloader slot, or to
configure a crawler (add-ons, stats) without running it. The few attributes that
do these are used here and nowhere else, so an upgrade of Scrapy is one module to
read: pyproject.toml pins ``scrapy<2.20``, and :func:`require_supported_scrapy`
refuses any other version with a clear error the first time a borrow is used.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import scrapy
from scrapy import Request
from scrapy.crawler import Crawler
from scrapy.utils.asyncio import call_later

#: The Scrapy version whose private attributes this module was written against.
SUPPORTED_SCRAPY = "2.19"


def require_supported_scrapy() -> None:
    """Raise unless Scrapy is :data:`SUPPORTED_SCRAPY`: the borrowed attributes may be gone elsewhere."""
    if not scrapy.__version__.startswith(f"{SUPPORTED_SCRAPY}."):
        raise RuntimeError(
            f"scrapy_sharedcrawl borrows private APIs of Scrapy {SUPPORTED_SCRAPY} (its compat.py); "
            f"this is Scrapy {scrapy.__version__}: install scrapy>={SUPPORTED_SCRAPY},<2.20"
        )


def running_engine(crawler: Crawler) -> Any | None:
    """The crawler's engine while it is being built (``crawler.engine`` is set only once it runs);
    None outside a crawl (a component built by a test or a tool)."""
    require_supported_scrapy()
    return getattr(crawler, "_engine", None)


def on_request_finished(engine: Any, callback: Callable[[Request], None]) -> Any:
    """Call ``callback(request)`` whenever ``engine`` is finished with a request, on every path (its
    callback and items done, an errback run, a replacement queued). → the engine's slot.

    Every path ends in ``engine._slot.remove_request``, so that method is wrapped.
    """
    require_supported_scrapy()
    slot = getattr(engine, "_slot", None)
    remove: Callable[[Request], None] | None = getattr(slot, "remove_request", None)
    if slot is None or not callable(remove) or not isinstance(getattr(slot, "inprogress", None), set):
        raise RuntimeError(
            "can't see when requests finish in this Scrapy version (ExecutionEngine._slot.remove_request "
            f"is gone); scrapy_sharedcrawl supports Scrapy {SUPPORTED_SCRAPY}"
        )

    def remove_request(request: Request) -> None:
        callback(request)
        remove(request)

    slot.remove_request = remove_request
    return slot


def wake_engine(slot: Any, delay: float = 0.0) -> None:
    """Have the engine ask its scheduler for requests now (or in ``delay`` s, unless it is to ask sooner)
    rather than at its next heartbeat (5 s)."""
    schedule = getattr(getattr(slot, "nextcall", None), "schedule", None)
    if callable(schedule):
        schedule(delay)


def pause_download_slot(downloader: Any, slot: Any, seconds: float) -> None:
    """Hold a downloader slot's queue for ``seconds``: the downloader keeps a slot's queue while
    ``slot.latercall`` is set and resumes it in ``_latercall()``; this borrows that mechanism."""
    require_supported_scrapy()
    if slot.latercall is not None:
        slot.latercall.cancel()
    slot.latercall = call_later(seconds, downloader._latercall, slot)


def configure_crawler(crawler: Crawler) -> None:
    """Configure ``crawler`` as ``scrapy shell`` does, without running it: add-ons applied, stats and
    the request fingerprinter built (for tools that push requests, such as a seeding tool)."""
    require_supported_scrapy()
    crawler._apply_settings()


def quiet_reported_start_failure(error: BaseException) -> bool:
    """Keep asyncio from logging ``error`` a second time, with its traceback, once it has been told in
    one line: → whether it could (False outside an asyncio task, e.g. Twisted's ``CrawlerProcess``).

    Scrapy 2.19 runs ``Crawler.crawl_async`` in the runner's task (``AsyncCrawlerRunner._crawl_and_track``),
    which marks the crawl ``bootstrap_failed`` (``scrapy crawl`` exits with 1) and re-raises, leaving
    asyncio to log "Task exception was never retrieved" with the traceback. A done callback on that task
    retrieves the exception when it is ``error`` itself, so any other failure is still logged.
    """
    require_supported_scrapy()
    try:
        task = asyncio.current_task()
    except RuntimeError:  # no running loop
        return False
    if task is None:
        return False

    def retrieve(done: asyncio.Future[Any]) -> None:
        failure = None if done.cancelled() else done.exception()  # retrieved: asyncio won't log it
        if failure is not None and failure is not error:  # another failure: logged as asyncio would
            done.get_loop().call_exception_handler(
                {"message": "Task exception was never retrieved", "exception": failure, "future": done}
            )

    task.add_done_callback(retrieve)
    return True
