"""The shared scheduler and its parts: ``SCHEDULER = "scrapy_sharedcrawl.scheduler.LeasingScheduler"``.

:mod:`.leasing` is Scrapy's scheduler interface; the parts it drives each own a piece of the work:
:mod:`.push_buffer` (requests on their way into Redis), :mod:`.lease_ledger` (leases held, acknowledged,
renewed), :mod:`.crawl_end` (seed marker and finishing), :mod:`.heartbeat` (what a tick does),
:mod:`.engine_hooks`, :mod:`.rejects` and :mod:`.settings`.

``LeasingScheduler`` is imported on first use: a module the scheduler itself imports (``start_urls``)
may import a part (``settings``) without importing the scheduler, and so without an import cycle.

Design notes: docs/framework-design.md#scheduler.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from scrapy_sharedcrawl.scheduler.leasing import LeasingScheduler

__all__ = ["LeasingScheduler"]


def __getattr__(name: str) -> Any:
    if name == "LeasingScheduler":
        from scrapy_sharedcrawl.scheduler.leasing import LeasingScheduler

        return LeasingScheduler
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
