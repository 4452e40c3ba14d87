"""The replica's hostile mode (``--faults hostile=N``): which sids, what their pages carry, what the truth says.

Pages are checked with plain parsel selectors and string counts, not with the crawler's
parser (tests/site/test_hostile_values.py runs the crawler's parser over them).
"""

from __future__ import annotations

import itertools
import json
import re
import urllib.request

import pytest
from harness import replica_server
from parsel import Selector

from solidot_replica import FaultConfig, Replica, ReplicaConfig
from solidot_replica.cli import main as replica_cli
from solidot_replica.faults import HOSTILE_KINDS
from solidot_replica.model import HOSTILE_DROPS, DroppedStory
from solidot_replica.pages import SitePages
from solidot_replica.stories import DEEP_BODY, DEEP_THREAD, HUGE_NUMBER, TOO_DEEP_THREAD

DOMAIN = "solidot.test:8080"
BASE_URL = f"http://www.{DOMAIN}"


def hostile_replica(spec: str = "hostile=4", stories: int = 300) -> Replica:
    return Replica(ReplicaConfig(stories=stories, last_sid=80300, faults=FaultConfig.parse(spec)))


@pytest.fixture(scope="module")
def replica() -> Replica:
    return hostile_replica()


@pytest.fixture(scope="module")
def pages(replica: Replica) -> SitePages:
    return SitePages(replica)


def story_html(pages: SitePages, sid: int) -> str:
    page = pages.answer(f"www.{DOMAIN}", "/story", (("sid", str(sid)),))
    assert page.status == 200 and page.kind == "story"
    return page.body.decode()


def first_of(replica: Replica, kind: str) -> int:
    return next(sid for sid, k in replica.hostile_sids().items() if k == kind)


def test_the_hostile_fault_parses_and_picks_every_nth_sid_cycling_through_the_kinds() -> None:
    config = FaultConfig.parse("hostile=7,seed=3")
    assert config.hostile_every == 7 and config.any
    kinds = [config.hostile_kind(sid) for sid in range(80000, 80100)]
    assert [sid for sid, kind in zip(range(80000, 80100), kinds, strict=True) if kind] == [
        sid for sid in range(80000, 80100) if sid % 7 == 0
    ]
    picked = [kind for kind in kinds if kind]
    assert set(picked) == set(HOSTILE_KINDS)
    assert all(a != b for a, b in itertools.pairwise(picked))  # consecutive ones differ
    assert FaultConfig.parse("hostile=1").hostile_kind(80222) is None  # never the real story
    assert FaultConfig().hostile_kind(80000) is None
    with pytest.raises(ValueError):
        FaultConfig.parse("hostile")


def test_without_the_fault_nothing_is_hostile_and_pages_are_unchanged() -> None:
    plain, hostile = Replica(ReplicaConfig(stories=300, last_sid=80300)), hostile_replica()
    assert plain.hostile_sids() == {} and plain.unserved_sids() == []
    calm = next(sid for sid in hostile.sids() if hostile.hostile_kind(sid) is None)
    assert story_html(SitePages(plain), calm) == story_html(SitePages(hostile), calm)
    assert plain.truth(calm, BASE_URL) == hostile.truth(calm, BASE_URL)


def test_gaps_and_malformed_pages_are_never_hostile() -> None:
    replica = hostile_replica("hostile=1,malformed=0.3")
    malformed = set(s for s in replica.sids() if replica.config.faults.is_malformed(s))
    assert malformed and not malformed & set(replica.hostile_sids())
    assert set(replica.hostile_sids()) == set(replica.sids()) - malformed - {80222}
    assert all(replica.hostile_kind(sid) is None for sid in replica.gap_sids())


def test_huge_views(pages: SitePages, replica: Replica) -> None:
    sid = first_of(replica, "huge_views")
    html = story_html(pages, sid)
    assert f"<b>本文已被查看 {HUGE_NUMBER} 次</b>" in html
    assert replica.story(sid).views == HUGE_NUMBER == 10**20


def test_huge_comment_cid(pages: SitePages, replica: Replica) -> None:
    sid = first_of(replica, "huge_cid")
    page = Selector(text=story_html(pages, sid))
    ids = page.css("div.reply_list li::attr(id)").getall()
    assert ids[0] == f"tree_{HUGE_NUMBER}"
    assert page.css(f"#comment_{HUGE_NUMBER}.list_com")
    # replies to it still hang under it
    replies = [c for c in replica.story(sid).comments if c.parent_cid == HUGE_NUMBER]
    for reply in replies:
        assert page.css(f"#tree_{HUGE_NUMBER} #tree_{reply.cid}")


def test_a_body_nested_1200_divs_deep(pages: SitePages, replica: Replica) -> None:
    sid = first_of(replica, "deep_body")
    html = story_html(pages, sid)
    body = html[html.index('<div class="p_mainnew">') : html.index("<!-- comments start -->")]
    assert "<div>" * DEEP_BODY in body and DEEP_BODY == 1200
    page = Selector(text=html)  # parsel reads 2,048 levels: the whole page is there
    deepest = page.css("div.p_mainnew").xpath("./" + "/".join(["div"] * DEEP_BODY))
    assert deepest and page.css("#footer")
    truth = replica.truth(sid, BASE_URL)
    assert truth["body_html"].startswith("<div>" * DEEP_BODY) and truth["body_html"].endswith(
        "</div>" * DEEP_BODY
    )
    assert "<div>" not in truth["body_text"] and truth["body_text"].strip() == truth["body_text"]


@pytest.mark.parametrize(("kind", "levels"), [("deep_thread", DEEP_THREAD), ("too_deep", TOO_DEEP_THREAD)])
def test_comment_threads_nested_deep(pages: SitePages, replica: Replica, kind: str, levels: int) -> None:
    sid = first_of(replica, kind)
    html = story_html(pages, sid)
    thread = html[html.index('<div class="reply_list">') : html.index("<!-- comments end -->")]
    # each comment's li holds the next one's ul: every ul opens before any closes
    assert thread.count('<ul class="reply_ul">') == thread.count("<li ") == levels
    assert re.search(rf"(?:</ul></li>){{{levels - 1}}}</ul>", thread)
    assert f"<b>{levels}</b>条评论" in html
    comments = replica.story(sid).comments
    assert [c.parent_cid for c in comments] == [None, *(c.cid for c in comments[:-1])]


def test_the_truth_says_what_a_correct_crawl_does(replica: Replica) -> None:
    hostile = replica.hostile_sids()
    assert set(hostile.values()) == set(HOSTILE_KINDS)
    for sid, kind in hostile.items():
        if kind in HOSTILE_DROPS:
            with pytest.raises(DroppedStory) as dropped:
                replica.truth(sid, BASE_URL)
            assert (dropped.value.sid, dropped.value.kind, dropped.value.stat) == (
                sid,
                kind,
                HOSTILE_DROPS[kind],
            )
            assert isinstance(dropped.value, KeyError) and HOSTILE_DROPS[kind] in str(dropped.value)
        else:
            truth = replica.truth(sid, BASE_URL)
            levels = DEEP_THREAD if kind == "deep_thread" else len(replica.story(sid).comments)
            assert truth["comment_count"] == len(truth["comments"]) == levels
    assert HOSTILE_DROPS == {
        "huge_views": "solidot/validate/dropped/int_out_of_range/views",
        "huge_cid": "solidot/validate/dropped/int_out_of_range/comments.cid",
        "too_deep": "solidot/dropped/too_deep",
    }
    dropped_sids = replica.dropped_sids()
    assert set(replica.unserved_sids()) == set(dropped_sids)
    assert dropped_sids == {sid: HOSTILE_DROPS[k] for sid, k in hostile.items() if k in HOSTILE_DROPS}


def test_list_pages_and_rss_still_serve(pages: SitePages, replica: Replica) -> None:
    sid = first_of(replica, "deep_body")
    day = replica.story(sid).published_at
    listing = pages.answer(f"www.{DOMAIN}", "/", (("issue", f"{day:%Y%m%d}"),))
    assert listing.status == 200 and f'href="/story?sid={sid}"' in listing.body.decode()
    assert pages.answer(f"www.{DOMAIN}", "/index.rss", ()).status == 200


def test_the_cli_describes_hostile_sids_and_leaves_dropped_ones_out_of_the_truth(
    capsys: pytest.CaptureFixture[str],
) -> None:
    arguments = ["--stories", "60", "--last-sid", "80300", "--faults", "hostile=4"]
    assert replica_cli(["info", *arguments]) == 0
    info = json.loads(capsys.readouterr().out)
    replica = Replica(ReplicaConfig(stories=60, last_sid=80300, faults=FaultConfig.parse("hostile=4")))
    expected: dict[str, int] = {}
    for kind in replica.hostile_sids().values():
        expected[kind] = expected.get(kind, 0) + 1
    assert info["hostile"] == expected and info["malformed"] == 0
    assert replica_cli(["truth", *arguments, "--base-url", BASE_URL]) == 0
    sids = [json.loads(line)["sid"] for line in capsys.readouterr().out.splitlines()]
    assert sids == [sid for sid in replica.sids() if sid not in replica.dropped_sids()]


def test_the_server_serves_hostile_pages_over_http() -> None:
    with replica_server(stories=40, last_sid=80300, faults="hostile=5") as server:
        model = hostile_replica("hostile=5", stories=40)
        for sid, kind in model.hostile_sids().items():
            request = urllib.request.Request(
                f"http://127.0.0.1:{server.port}/story?sid={sid}",
                headers={"Host": f"www.solidot.test:{server.port}"},
            )
            with urllib.request.urlopen(request, timeout=10) as response:
                body = response.read().decode()
            assert response.status == 200 and body.rstrip().endswith("</html>"), kind
            if kind == "huge_views":
                assert f"本文已被查看 {HUGE_NUMBER} 次" in body
            if kind == "too_deep":
                assert body.count('<ul class="reply_ul">') == TOO_DEEP_THREAD
