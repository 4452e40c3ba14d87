"""What a Solidot story request costs in the shared queue, and that one queued by the previous release
still means what it meant: a real private Redis, the spider's own requests, the seeder and scheduler a
worker runs."""

from __future__ import annotations

from scheduling_fixtures import make_spider
from scrapy.http import HtmlResponse

from scrapy_sharedcrawl.seeding import Seeder
from scrapy_sharedcrawl.testing.scheduling import open_scheduler, plant

STORY = "https://www.solidot.org/story?sid={}"


def test_a_seeded_story_is_its_url_and_two_flags_and_comes_back_whole(redis_url: str) -> None:
    """A whole-history crawl's queue is seeds: each is its URL, ``"m+":{"sid_range":true}`` (the only meta
    it does not share with the spider's defaults) and the start flag: 76 bytes for sid 70000, where the
    whole request took 170 (``handle_httpstatus_list``, ``is_start_request``, empty ``categories``)."""
    spider = make_spider(redis_url, "https://www.solidot.org")
    seeder = Seeder(spider)
    assert seeder.seed([spider.story_request(70000, from_range=True)]).queued == 1
    [(_, payload)] = seeder.queue.queued()
    assert payload == b'{"u":"https://www.solidot.org/story?sid=70000","m+":{"sid_range":true},"s":1}'

    request = open_scheduler(spider).next_request()
    assert request is not None and request.url == STORY.format(70000)
    assert request.meta == {"handle_httpstatus_list": [404], "sid_range": True, "is_start_request": True}
    assert request.cb_kwargs == {"categories": []}
    assert (request.callback, request.errback) == (spider.parse_story, spider.story_failed)


def test_a_range_story_queued_by_the_previous_release_is_still_a_gap_when_missing(redis_url: str) -> None:
    """The previous release wrote the whole meta, its key ``solidot_from_range``: popped after the
    upgrade, its 404 is a gap (counted), not a missing story (a warning)."""
    spider = make_spider(redis_url, "https://www.solidot.org")
    scheduler = open_scheduler(spider)
    previous = (
        b'{"u":"https://www.solidot.org/story?sid=70001","m":{"handle_httpstatus_list":[404],'
        b'"solidot_from_range":true,"is_start_request":true},"k":{"categories":[]}}'
    )
    plant(scheduler.server, scheduler.queue.named, b"previous " + previous, host="*", priority=10)

    request = scheduler.next_request()
    assert request is not None and request.url == STORY.format(70001)
    assert request.callback == spider.parse_story
    response = HtmlResponse(request.url, status=404, body=b"", request=request)
    assert list(request.callback(response, **request.cb_kwargs)) == []
    stats = spider.crawler.stats
    assert stats.get_value("solidot/story_gap") == 1 and stats.get_value("solidot/story_missing") is None
