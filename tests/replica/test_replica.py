"""The replica itself: faithful to shared/solidot-site.md, deterministic, lazy, and honest about faults.

Pages are checked with plain parsel selectors, not with the crawler's parser, so a
mistake shared by both can't hide.
"""

from __future__ import annotations

import urllib.error
import urllib.request
from datetime import date, timedelta
from pathlib import Path

import pytest
from harness import replica_server
from parsel import Selector

from solidot_replica import FaultConfig, Replica, ReplicaConfig, timeline
from solidot_replica.faults import Fault, FaultInjector
from solidot_replica.pages import SitePages

DOMAIN = "solidot.test:8080"


def get(pages: SitePages, url_path: str, label: str = "www") -> tuple[int, str]:
    path, _, query = url_path.partition("?")
    params = tuple(tuple(p.split("=", 1)) for p in query.split("&") if p)
    page = pages.answer(f"{label}.{DOMAIN}", path, params)
    return page.status, page.body.decode("utf-8")


@pytest.fixture(scope="module")
def pages(replica_model: Replica) -> SitePages:
    return SitePages(replica_model)


# -- the calendar -------------------------------------------------------------------


def test_timeline_meets_the_known_anchors() -> None:
    assert timeline.day_of(1) == date(2006, 1, 1)
    assert timeline.day_of(30309) == date(2012, 7, 1)
    assert timeline.day_of(30308) == date(2012, 6, 30)
    assert timeline.published_at(80222).isoformat() == "2025-01-03T14:01:00+08:00"
    assert timeline.day_of(85572) == date(2026, 10, 10)


@pytest.mark.parametrize("start", [date(2006, 3, 1), date(2013, 5, 1), date(2021, 6, 1), date(2026, 9, 1)])
def test_every_day_has_a_plausible_number_of_stories_and_sids_partition(start: date) -> None:
    for offset in range(40):
        day = start + timedelta(days=offset)
        sids = timeline.sid_range(day)
        assert 5 <= len(sids) <= 17, (day, len(sids))
        assert all(timeline.day_of(sid) == day for sid in (sids[0], sids[-1]))
        times = [timeline.published_at(sid) for sid in sids]
        assert all(t.date() == day for t in times)


def test_the_full_history_is_cheap_to_describe() -> None:
    full = Replica(ReplicaConfig(stories=85572, last_sid=85572))
    assert full.first_sid == 1
    assert 85572 * 0.98 < len(full.sids()) < 85572
    assert full.truth(80222, "https://www.solidot.org")["title"] == "普京命令俄罗斯加强与中国在 AI 上的合作"


# -- content and ground truth ---------------------------------------------------------


def test_the_test_replica_spans_enough_days_and_has_gaps(replica_model: Replica) -> None:
    assert len(replica_model.sids()) >= 200
    assert len(replica_model.days()) >= 30
    assert replica_model.gap_sids()
    assert 80222 in replica_model.sids()
    assert sorted(replica_model.sids() + replica_model.gap_sids()) == list(range(80001, 80301))


def test_generation_is_deterministic_and_seeded() -> None:
    one, two = (
        Replica(ReplicaConfig(stories=50, last_sid=80300)),
        Replica(ReplicaConfig(stories=50, last_sid=80300)),
    )
    other = Replica(ReplicaConfig(stories=50, last_sid=80300, seed=2))
    sid = one.sids()[3]
    assert one.truth(sid, "http://x.test") == two.truth(sid, "http://x.test")
    assert one.truth(sid, "http://x.test") != other.truth(sid, "http://x.test")


def test_a_revision_changes_views_and_comments_of_some_stories_only() -> None:
    before = Replica(ReplicaConfig(stories=300, last_sid=80300))
    after = Replica(ReplicaConfig(stories=300, last_sid=80300, revision=1))
    changed = set(after.changed_sids())
    assert 0 < len(changed) < len(after.sids()) / 4
    for sid in after.sids():
        old, new = before.truth(sid, "http://x.test"), after.truth(sid, "http://x.test")
        if sid in changed:
            assert new["views"] > old["views"] and new["comment_count"] == old["comment_count"] + 1
            assert {k: v for k, v in new.items() if k not in ("views", "comment_count", "comments")} == {
                k: v for k, v in old.items() if k not in ("views", "comment_count", "comments")
            }
        else:
            assert new == old


# -- pages ------------------------------------------------------------------------------


def test_story_80222_is_the_saved_real_page(pages: SitePages) -> None:
    status, html = get(pages, "/story?sid=80222")
    assert status == 200
    page = Selector(text=html)
    block = page.css("#center > div.block_m")[0]
    assert (
        block.css("div.ct_tittle > div.bg_htit > h2::text").get() == "普京命令俄罗斯加强与中国在 AI 上的合作"
    )
    byline = block.css("div.talk_time")
    assert byline.css("div.icon_float > a::attr(href)").get() == "/search?tid=151"
    assert byline.css("div.icon_float > a::attr(title)").get() == "人工智能"
    assert byline.css("a[href='/~Wilson']::text").get() == "Wilson"
    assert "(42865)发表于 2025年01月03日 14时01分 星期五" in byline.xpath("string(.)").get()
    assert byline.css("b::text").get() == "来自月海沉船"
    body = block.css("div.p_mainnew").get()
    assert "不仅远远落后于美国和中国，也远远落后于印度和巴西。<!--more--><br>https://www.reuters.com/" in body
    # the sidebar's view counter comes before the story
    assert html.index("本文已被查看 5581 次") < html.index('<div id="center">')
    assert "<!-- comments start -->\n<!-- comments end -->" in html  # the empty comment section


def test_stories_answer_on_category_hosts_too_and_gaps_answer_404(
    pages: SitePages, replica_model: Replica
) -> None:
    sid = replica_model.sids()[10]
    assert get(pages, f"/story?sid={sid}", "linux") == get(pages, f"/story?sid={sid}", "www")
    assert get(pages, f"/story?sid={sid}", "linux")[0] == 200
    assert get(pages, f"/story?sid={replica_model.gap_sids()[0]}")[0] == 404
    assert get(pages, f"/story?sid={replica_model.first_sid - 1}")[0] == 404
    assert get(pages, "/story?sid=abc")[0] == 404
    assert get(pages, "/no/such/page")[0] == 404


def test_eras_write_bodies_and_references_their_own_way() -> None:
    def body_of(sid: int) -> str:
        replica = Replica(ReplicaConfig(stories=20, last_sid=sid + 10))
        html = get(SitePages(replica), f"/story?sid={sid}")[1]
        return Selector(text=html).css("#center > div.block_m div.p_mainnew").get()

    era_2021 = timeline.sid_range(date(2021, 5, 4))[2]
    era_2023 = timeline.sid_range(date(2023, 5, 4))[2]
    era_2025 = timeline.sid_range(date(2025, 5, 4))[2]
    assert "<!--more-->" not in body_of(era_2021) and "img.solidot.org//0/446/" in body_of(era_2021)
    assert "<p>" in body_of(era_2023) and "<!--more--><br>https://" in body_of(era_2023)
    assert "<p>" not in body_of(era_2025) and "<!--more--><br>" in body_of(era_2025)


def test_day_archives_list_the_day_newest_first_with_category_links(
    pages: SitePages, replica_model: Replica
) -> None:
    day = replica_model.days()[5]
    status, html = get(pages, f"/?issue={day:%Y%m%d}")
    assert status == 200
    blocks = Selector(text=html).css("#center > div.block_m")
    listed = [int(b.css("h2 > a")[-1].attrib["href"].split("=")[1]) for b in blocks]
    assert listed == replica_model.sids_on(day) == sorted(listed, reverse=True)
    for block, sid in zip(blocks, listed, strict=True):
        anchors = block.css("h2 > a")
        category = replica_model.category_of(sid)
        assert len(anchors) == (2 if category else 1)
        if category:
            assert anchors[0].attrib["href"] == f"//{category}.{DOMAIN}/"
    navigation = Selector(text=html).css("#center > div.page a::attr(href)").getall()
    assert navigation == [
        f"/?issue={day + timedelta(days=1):%Y%m%d}",
        f"/?issue={day - timedelta(days=1):%Y%m%d}",
    ]


def test_home_category_homes_rss_and_robots(pages: SitePages, replica_model: Replica) -> None:
    home = Selector(text=get(pages, "/")[1])
    sids = [int(a.attrib["href"].split("=")[1]) for a in home.css("#center > div.block_m h2 > a:last-child")]
    assert sids == replica_model.home_sids()
    assert "/?issume=" in get(pages, "/")[1]  # the footer's typo
    assert get(pages, "/", "no-such-label")[1] == get(pages, "/")[1]  # unknown hosts are www
    science = Selector(text=get(pages, "/", "science")[1])
    listed = [
        int(a.attrib["href"].split("=")[1]) for a in science.css("#center > div.block_m h2 > a:last-child")
    ]
    assert listed == replica_model.category_home_sids("science")
    assert all(replica_model.category_of(sid) == "science" for sid in listed)
    feed = Selector(text=get(pages, "/index.rss")[1], type="xml")
    links = feed.xpath("//item/link/text()").getall()
    assert links == [f"http://www.{DOMAIN}/story?sid={sid}" for sid in replica_model.rss_sids()]
    assert all(d.endswith("+0800") for d in feed.xpath("//item/pubDate/text()").getall())
    status, robots = get(pages, "/robots.txt")
    assert status == 200 and "Disallow: /search" in robots and "Disallow: /~" in robots


def test_comment_threads_nest_and_reuse_story_classes(pages: SitePages, replica_model: Replica) -> None:
    sid = next(
        s
        for s in replica_model.sids()
        if any(c["parent_cid"] for c in replica_model.truth(s, "")["comments"])
    )
    html = get(pages, f"/story?sid={sid}")[1]
    comments = Selector(text=html).css("div.reply_list")
    assert comments.css("li > ul.reply_ul > li div.list_com div.ct_tittle div.bg_htit h2")
    assert all("(得分:" in title for title in comments.css("h2::text").getall())
    truth = replica_model.truth(sid, "")
    assert len(comments.css("div.list_com")) == truth["comment_count"]


# -- faults -----------------------------------------------------------------------------


def test_fault_specs_parse_and_reject_typos() -> None:
    config = FaultConfig.parse("reset=0.05,burst=50x0.5,throttle=0.1,retry_after=2,charset=0.3,seed=7")
    assert (config.reset_rate, config.error_burst_every, config.error_burst_seconds) == (0.05, 50, 0.5)
    assert (config.throttle_rate, config.retry_after, config.wrong_charset_rate, config.seed) == (
        0.1,
        2,
        0.3,
        7,
    )
    with pytest.raises(ValueError, match="unknown fault"):
        FaultConfig.parse("resets=0.1")


def test_the_injector_counts_exactly_what_it_injects() -> None:
    injector = FaultInjector(FaultConfig.parse("reset=0.2,throttle=0.2,truncate=0.5,seed=3"))
    decisions = [injector.decide(is_page=True, is_story=True) for _ in range(1000)]
    for kind in (Fault.RESET, Fault.THROTTLE, Fault.TRUNCATE):
        assert injector.counts[kind.value] == sum(d.fault is kind for d in decisions) > 0
    assert not any(injector.decide(is_page=False, is_story=False).fault is Fault.TRUNCATE for _ in range(200))


def test_malformed_sids_are_fixed_per_sid_and_never_the_fixture() -> None:
    replica = Replica(ReplicaConfig(stories=300, last_sid=80300, faults=FaultConfig.parse("malformed=0.5")))
    unserved = replica.unserved_sids()
    assert 80222 not in unserved and 100 < len(unserved) < 200
    html = get(SitePages(replica), f"/story?sid={unserved[0]}")[1]
    assert not Selector(text=html).css("#center div.ct_tittle") and html.rstrip().endswith("</html>")


def test_the_server_routes_by_host_and_faults_over_http() -> None:
    with replica_server(stories=40, last_sid=80300, faults="truncate=1,charset=1,seed=2") as server:
        request = urllib.request.Request(
            f"http://127.0.0.1:{server.port}/story?sid=80290",
            headers={"Host": f"linux.solidot.test:{server.port}"},
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            body = response.read()
            assert int(response.headers["Content-Length"]) == len(body)
            assert response.headers["Content-Type"] == "text/html; charset=utf-8"
        assert b"</html>" not in body and b"<h2>" in body
        with urllib.request.urlopen(f"http://127.0.0.1:{server.port}/robots.txt", timeout=10) as response:
            assert response.read().endswith(b"Disallow: /comments\n")  # never faulted
        with urllib.request.urlopen(f"http://127.0.0.1:{server.port}/", timeout=10) as response:
            assert response.headers["Content-Type"] == "text/html; charset=iso-8859-1"
        with pytest.raises(urllib.error.HTTPError) as missing:
            urllib.request.urlopen(f"http://127.0.0.1:{server.port}/story?sid=1", timeout=10)
        assert missing.value.code == 404
        served = server.stats()
    assert served["faults"] == {"truncate": 1, "wrong_charset": 1}
    assert served["by_status"] == {"200": 3, "404": 1}


def test_the_crawler_imports_nothing_from_the_replica() -> None:
    """The replica is a test tool: the product (and the egg scrapyd runs) must work without it."""
    import solidot_spider

    package = Path(solidot_spider.__file__).resolve().parent
    importing = [
        str(path.relative_to(package))
        for path in package.rglob("*.py")
        if "solidot_replica" in path.read_text(encoding="utf-8")
    ]
    assert importing == []
