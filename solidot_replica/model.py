"""The replica as a whole: which sids it serves, which days and lists, and the ground truth.

A replica holds a window of the real history: the ``stories`` sid slots ending
at ``last_sid``. Sids outside the window and gap sids answer 404, day archives
list only the window's stories, and :meth:`Replica.truth` gives the exact item
a correct crawler must produce for each served sid.

With ``--faults hostile=N`` every N-th sid serves a page carrying one hostile
value (see :data:`~solidot_replica.faults.HOSTILE_KINDS`). For each,
:meth:`Replica.truth` says what a correct crawler does: the exact item when it
can read the page whole (``deep_body``, ``deep_thread``), else it raises
:class:`DroppedStory` naming the stats key the crawl counts the drop in
(:data:`HOSTILE_DROPS`); :meth:`Replica.unserved_sids` lists those sids.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import date, timedelta
from functools import lru_cache
from typing import Any

from solidot_replica import render, timeline
from solidot_replica.faults import FaultConfig
from solidot_replica.stories import FIXTURE_SID, StoryRecord, generate, make_hostile, revised
from solidot_spider.site.urls import CATEGORIES

FULL_HISTORY_LAST_SID = 85572
RSS_SIZE = 20
#: Hostile kinds no correct crawl turns into an item → the stats key that counts the drop.
HOSTILE_DROPS: dict[str, str] = {
    "huge_views": "solidot/validate/dropped/int_out_of_range/views",  # BSON can't hold 10^20
    "huge_cid": "solidot/validate/dropped/int_out_of_range/comments.cid",
    "too_deep": "solidot/dropped/too_deep",  # libxml2 stops reading 2,048 elements deep
}


class DroppedStory(KeyError):
    """:meth:`Replica.truth` of a sid a correct crawl drops: ``stat`` is the stats key it counts it in."""

    def __init__(self, sid: int, kind: str, stat: str) -> None:
        super().__init__(sid)
        self.sid, self.kind, self.stat = sid, kind, stat

    def __str__(self) -> str:
        return f"sid {self.sid} ({self.kind}) is dropped by a correct crawl, counted in {self.stat}"


@dataclass(frozen=True)
class ReplicaConfig:
    """What to serve: the sid window, gaps, content seed, faults and content revision."""

    stories: int = 300  # sid slots in the window (gaps included)
    last_sid: int = FULL_HISTORY_LAST_SID
    gap_rate: float = 0.01
    seed: int = 1
    domain: str = "solidot.test"
    home_size: int = 20
    faults: FaultConfig = field(default_factory=FaultConfig)
    #: A later visit, this many days after the newest story's day: the stories that changed in
    #: between (young ones often, old ones rarely: ``stories.change_probability``) have more views
    #: and new comments.
    revision: int = 0

    def __post_init__(self) -> None:
        if not 0 < self.stories <= self.last_sid:
            raise ValueError(f"stories must be within 1..{self.last_sid}, got {self.stories}")


class Replica:
    """The replica's content model: lists, pages' facts and ground truth, all computed lazily."""

    def __init__(self, config: ReplicaConfig | None = None) -> None:
        self.config = config or ReplicaConfig()
        self.first_sid = self.config.last_sid - self.config.stories + 1
        self.story = lru_cache(maxsize=8192)(self._story)

    # -- which sids --------------------------------------------------------------

    def in_window(self, sid: int) -> bool:
        return self.first_sid <= sid <= self.config.last_sid

    def is_gap(self, sid: int) -> bool:
        """A sid the site skipped (it answers 404); never 80222 nor a window edge."""
        if sid in (FIXTURE_SID, self.first_sid, self.config.last_sid):
            return False
        return random.Random(f"gap:{self.config.seed}:{sid}").random() < self.config.gap_rate

    def serves(self, sid: int) -> bool:
        return self.in_window(sid) and not self.is_gap(sid)

    def sids(self) -> list[int]:
        """Every served sid, oldest first."""
        return [sid for sid in range(self.first_sid, self.config.last_sid + 1) if not self.is_gap(sid)]

    def gap_sids(self) -> list[int]:
        return [sid for sid in range(self.first_sid, self.config.last_sid + 1) if self.is_gap(sid)]

    def unserved_sids(self) -> list[int]:
        """Served sids no correct item can come from: malformed pages and dropped hostile ones."""
        faults = self.config.faults
        return [
            sid
            for sid in self.sids()
            if faults.is_malformed(sid) or faults.hostile_kind(sid) in HOSTILE_DROPS
        ]

    def hostile_kind(self, sid: int) -> str | None:
        """The hostile value sid's page carries (``--faults hostile=N``), or None (gaps, malformed pages)."""
        if not self.serves(sid) or self.config.faults.is_malformed(sid):
            return None
        return self.config.faults.hostile_kind(sid)

    def hostile_sids(self) -> dict[int, str]:
        """Every served sid with a hostile page → its kind, oldest first."""
        kinds = ((sid, self.hostile_kind(sid)) for sid in self.sids())
        return {sid: kind for sid, kind in kinds if kind is not None}

    def dropped_sids(self) -> dict[int, str]:
        """Hostile sids a correct crawl drops → the stats key it counts each in."""
        return {
            sid: HOSTILE_DROPS[kind] for sid, kind in self.hostile_sids().items() if kind in HOSTILE_DROPS
        }

    def changed_sids(self) -> list[int]:
        """Sids whose content differs from revision 0 (views, comments), oldest first."""
        revisions = range(1, self.config.revision + 1)
        today = self.today()
        return [sid for sid in self.sids() if any(revised(sid, r, today) for r in revisions)]

    # -- days and lists ------------------------------------------------------------

    def days(self) -> list[date]:
        """Beijing days with at least one served story, oldest first."""
        first, last = timeline.day_of(self.first_sid), timeline.day_of(self.config.last_sid)
        every = (first + timedelta(days=n) for n in range((last - first).days + 1))
        return [day for day in every if self.sids_on(day)]

    def today(self) -> date:
        return timeline.day_of(self.config.last_sid)

    def sids_on(self, day: date, category: str | None = None) -> list[int]:
        """Served sids of a day archive, newest first (on a category host: that category's)."""
        return [
            sid
            for sid in reversed(timeline.sid_range(day))
            if self.serves(sid) and (category is None or self.category_of(sid) == category)
        ]

    def latest(self, count: int, category: str | None = None) -> list[int]:
        """The newest ``count`` served sids (of a category), newest first."""
        found: list[int] = []
        for sid in range(self.config.last_sid, self.first_sid - 1, -1):
            if len(found) == count:
                break
            if self.serves(sid) and (category is None or self.category_of(sid) == category):
                found.append(sid)
        return found

    def home_sids(self) -> list[int]:
        return self.latest(self.config.home_size)

    def category_home_sids(self, category: str) -> list[int]:
        return self.latest(self.config.home_size, category)

    def rss_sids(self) -> list[int]:
        return self.latest(RSS_SIZE)

    def categories(self) -> list[str]:
        return list(CATEGORIES)

    def category_of(self, sid: int) -> str | None:
        return self.story(sid).category

    # -- content -------------------------------------------------------------------

    def _story(self, sid: int) -> StoryRecord:
        story = generate(sid, seed=self.config.seed, revision=self.config.revision, today=self.today())
        kind = self.hostile_kind(sid)
        return make_hostile(story, kind) if kind is not None else story

    def truth(self, sid: int, base_url: str) -> dict[str, Any]:
        """The exact item a correct crawl yields for ``sid`` (all fields but ``fetched_at``).

        ``categories`` is what a crawl of the day archives finds (the h2
        category link); other discovery modes may find less. A hostile sid a
        correct crawl drops raises :class:`DroppedStory` (a KeyError).
        """
        if not self.serves(sid):
            raise KeyError(f"sid {sid} is not served by this replica")
        kind = self.hostile_kind(sid)
        if kind is not None and kind in HOSTILE_DROPS:
            raise DroppedStory(sid, kind, HOSTILE_DROPS[kind])
        story = self.story(sid)
        return {
            "sid": sid,
            "url": f"{base_url.rstrip('/')}/story?sid={sid}",
            "title": story.title,
            "author": story.author,
            "author_uid": story.author_uid,
            "published_at": story.published_at.isoformat(),
            "topics": [{"tid": t.tid, "name": " ".join(t.name.split())} for t in story.topics],
            "categories": [story.category] if story.category else [],
            "department": story.department,
            "body_html": render.body_html(story, served=False),
            "body_text": render.body_text(story),
            "references": render.references(story),
            "views": story.views,
            "comment_count": len(story.comments),
            "comments": [
                {
                    "cid": c.cid,
                    "parent_cid": c.parent_cid,
                    "author": c.author,
                    "author_uid": c.author_uid,
                    "title": c.title,
                    "score": c.score,
                    "published_at": c.published_at.isoformat(),
                    "text": "\n".join(c.lines),
                }
                for c in render.thread_order(story.comments)
            ],
        }
