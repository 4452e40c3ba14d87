"""One worker's part in the shared crawl's start and end: marking the seed, judging "finished",
and the clean-up that exactly one worker does.

:mod:`.finishing` holds the rules and the Redis scripts (the seed marker, the cluster's
status, the atomic finalize); this module applies them for a running worker: it marks
the crawl seeded once this worker's own start requests are all in Redis, turns an idle
worker's poll of the cluster status into a verdict (busy, waiting for a seed, finished,
no seed came), and finalizes — records the crawl finished and, unless
``SCHEDULER_PERSIST``, deletes its queue and dupefilter — in finite mode at close, after
the last acknowledgements, in continuous mode as soon as the crawl is over.
"""

from __future__ import annotations

import logging

from scrapy.dupefilters import BaseDupeFilter
from scrapy.statscollectors import StatsCollector

from scrapy_sharedcrawl.dupefilter import CompactRFPDupeFilter
from scrapy_sharedcrawl.finishing import ClusterStatus, CrawlState, Finisher, SeenRecord, Verdict
from scrapy_sharedcrawl.queue import LeasedPriorityQueue
from scrapy_sharedcrawl.scheduler.prefix import STATS

logger = logging.getLogger(__name__)


class CrawlEnd:
    """Seed marking and finishing for one worker (see the module docstring)."""

    def __init__(
        self,
        finisher: Finisher,
        state: CrawlState,
        queue: LeasedPriorityQueue,
        dupefilter: BaseDupeFilter,
        stats: StatsCollector,
        *,
        persist: bool,
        stats_meta_key: str,
    ) -> None:
        self.finisher = finisher
        self.state = state
        self.queue = queue
        self.df = dupefilter
        self.stats = stats
        self.persist = persist
        self.stats_meta_key = stats_meta_key
        self.where = finisher.where
        #: This worker's start requests are all in the scheduler; the crawl is not marked seeded yet.
        self.seed_pending = False
        #: The last judgement of the cluster's status.
        self.verdict: Verdict | None = None

    def join(self, worker_id: str) -> None:
        """A worker opens: learn the crawl it joins (if any) and the time from which a crawl that
        finishes is one this worker saw (raises if Redis is away)."""
        status = self.state.status()
        self.finisher.reference_ms = status.server_ms
        if status.busy:
            logger.info(
                "Joining a shared crawl at %s: %d requests queued, %d leased to workers (this one: %s)",
                self.where,
                status.queued,
                status.leased,
                worker_id,
            )
        self.finisher.adopt(status.seeded)

    def mark_seeded(self) -> None:
        """This worker's start requests are in Redis: mark the crawl seeded (raises if Redis is away)."""
        crawl_id = self.state.mark_seeded()
        self.seed_pending = False
        logger.info("This worker's start requests are in the shared queue: crawl %s is seeded", crawl_id)
        self.finisher.adopt(crawl_id)

    def judge(self) -> tuple[Verdict, ClusterStatus]:
        """Read the cluster's status and judge it; finalize now in continuous mode, where a finished
        crawl turns into waiting for the next seed. Raises if Redis is away."""
        status = self.state.status(self.finisher.crawl_id, self.finisher.reference_ms or 0)
        verdict = self.finisher.judge(status)
        if verdict is Verdict.FINISHED:
            if not self.finisher.should_finalize:
                logger.info(
                    "Crawl %s finished at %s (another worker cleaned up)",
                    self.finisher.crawl_id or "(seeded while this worker waited)",
                    self.where,
                )
            elif self.finisher.continuous:
                self.finalize()  # in finite mode: at close, after the last acknowledgements
            if self.finisher.continuous:
                self.finisher.restart_waiting(status.server_ms)
                verdict = Verdict.WAIT
        self.verdict = verdict
        return verdict, status

    def finalize(self) -> bool:
        """The crawl is over: record it as finished and, unless ``SCHEDULER_PERSIST``, delete its queue and
        dupefilter — one atomic script, so exactly one worker does it, and only if the cluster is idle. The
        script first leaves the URLs seen in the shared stats (``status`` shows them after the filter)."""
        crawl_id = self.finisher.crawl_id
        state_keys = self.state_keys()
        seen = SeenRecord.of(self.df, self.stats_meta_key)
        done = self.state.finalize(crawl_id, keep=self.persist, state_keys=state_keys, seen=seen)
        if isinstance(self.df, CompactRFPDupeFilter):
            self.df.layout = None  # deleted or not, agree on it again before the next push
        if done:
            self.stats.set_value(f"{STATS}finalized", 1)
            logger.info(
                "Crawl %s finished: nothing queued or leased at %s; %s",
                crawl_id or "(not marked)",
                self.where,
                "kept its queue and dupefilter (SCHEDULER_PERSIST)"
                if self.persist
                else "deleted its queue and dupefilter",
            )
        else:
            logger.info("Crawl %s finished at %s", crawl_id or "(not marked)", self.where)
        return done

    def state_keys(self) -> list[str]:
        """Every Redis key of the crawl's state but the seed marker and dead letters."""
        keys = list(self.queue.named.state)
        if isinstance(self.df, CompactRFPDupeFilter):
            keys += self.df.state_keys()  # reads the stored layout, never creates one to delete it
        elif isinstance(key := getattr(self.df, "key", None), str):
            keys.append(key)  # scrapy-redis's own filter: one set
        return keys
