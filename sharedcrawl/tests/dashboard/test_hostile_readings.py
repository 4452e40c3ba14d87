"""What ``status``, ``status --json``, the dashboard and ``/metrics`` make of values in Redis no worker wrote.

Anything with access to Redis can write the worker registry, the shared stats, the crawl's meta,
the per-minute page counts and the dupefilter's layout. A reader takes a value only when a worker
could have written it: one unreadable entry or field is skipped and counted, the rest is read, and
nothing prints a NaN. Real Redis, the real ``status`` command, the dashboard's real reader.

The fuzz test is derandomized with a bounded number of examples for CI; ``FUZZ_EXAMPLES=5000``
runs a longer campaign, ``FUZZ_SEED=N`` another one (random, from that seed).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from dataclasses import asdict
from typing import Any

import pytest
import redis
from hypothesis import HealthCheck, given, seed, settings
from hypothesis import strategies as st
from prometheus_client.exposition import generate_latest
from scrapy.settings import Settings

from scrapy_sharedcrawl.cli.status import StatusReader, render
from scrapy_sharedcrawl.dashboard.metrics import CounterFloor, crawl_metrics, registry
from scrapy_sharedcrawl.dashboard.state import DashboardReader, StableLabels

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "150"))
SEED = os.environ.get("FUZZ_SEED")
STATS, META, WORKERS, INFO = (
    "{news}:stats",
    "{news}:stats:meta",
    "{news}:workers",
    "{news}:workers:info",
)
SEEN_META, SEED_KEY = "{news}:seen:meta", "{news}:seed"
COUNT = "{news}:requests:count"
#: Every key the readers read (the dupefilter's first shards, and its Bloom filter, too).
ALL_KEYS = [
    *(STATS, META, WORKERS, INFO, SEEN_META, SEED_KEY, "{news}:series", "{news}:requests:count"),
    *("{news}:requests:leases", "{news}:requests:dead", "{news}:requests:seeded"),
    *("{news}:requests:leased", "{news}:requests:holders"),
    *("{news}:requests:ready", "{news}:requests:wait"),
    *("{news}:seen:0", "{news}:seen:bloom"),
]


def status(redis_url: str, *options: str) -> subprocess.CompletedProcess[str]:
    """``sharedcrawl status --spider news --redis-url URL OPTIONS`` as the operator runs it (its own process)."""
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "scrapy_sharedcrawl.cli",
            "status",
            "--spider",
            "news",
            "--redis-url",
            redis_url,
            *options,
        ],
        cwd=tempfile.gettempdir(),  # no project's scrapy.cfg above it
        capture_output=True,
        text=True,
        timeout=60,
    )


def no_nan(text: str) -> Any:
    """``text`` parsed as strict JSON: NaN and Infinity refused."""

    def refuse(constant: str) -> None:
        raise AssertionError(f"{constant} in the JSON")

    return json.loads(text, parse_constant=refuse)


def worker_entry(**fields: Any) -> str:
    entry = {
        "host": "h",
        "pid": 7,
        "started_at": 1.7e9,
        "pages": 5,
        "items": 2,
        "heartbeat": 5.0,
        "node": "n",
    }
    return json.dumps({**entry, **fields})


def register_workers(client: redis.Redis, entries: dict[str, str]) -> None:
    seconds, micros = client.time()
    now_ms = seconds * 1000 + micros // 1000
    for worker_id, entry in entries.items():
        client.zadd(WORKERS, {worker_id: now_ms})
        client.hset(INFO, worker_id, entry)


def dashboard_reading(redis_url: str, reader: DashboardReader | None = None) -> tuple[dict[str, Any], str]:
    """One dashboard refresh, as ``/api/state`` serves it (strict JSON) and as ``/metrics`` shows it."""
    reader = reader or DashboardReader(Settings({"REDIS_URL": redis_url}), "news")
    snapshot = reader.read()
    charts = reader.charts()
    state = no_nan(json.dumps(snapshot))
    no_nan(json.dumps(charts))
    metrics = generate_latest(registry(lambda: (snapshot, 1.0, True))).decode()
    assert "NaN" not in metrics and "Inf" not in metrics
    return state, metrics


def test_an_unreadable_registry_entry_is_skipped_and_counted(redis_url: str) -> None:
    client = redis.Redis.from_url(redis_url)
    register_workers(
        client,
        {
            "good": worker_entry(),
            "far-future": worker_entry(started_at=1e300),
            "huge-pages": json.dumps({"host": "h", "pid": 1, "pages": 1e400}).replace("Infinity", "1e400"),
            "surrogates": worker_entry(host="\ud800", node="x\udcff", job="\ud83d"),
            "not-json": "{",
            "a-list": "[1, 2]",
            "nan-items": '{"host": "h", "pid": 1, "items": NaN}',
        },
    )
    done = status(redis_url)
    assert done.returncode == 0, done.stderr
    assert "workers    2 live" in done.stdout and "unreadable workers: 5" in done.stdout
    assert "  x?  " in done.stdout  # a lone surrogate, which no terminal can show, printed as "?"
    assert "Traceback" not in done.stderr
    done = status(redis_url, "--json")
    assert done.returncode == 0, done.stderr
    reading = no_nan(done.stdout)
    assert [worker["id"] for worker in reading["workers"]] == ["good", "surrogates"]
    assert reading["unreadable"] == {"workers": 5}
    state, metrics = dashboard_reading(redis_url)
    assert [worker["id"] for worker in state["workers"]] == ["good", "surrogates"]
    assert state["unreadable"] == {"workers": 5}
    assert 'sharedcrawl_unreadable{what="workers"} 5.0' in metrics


def test_unreadable_stats_and_meta_are_skipped_and_counted_never_nan(redis_url: str) -> None:
    client = redis.Redis.from_url(redis_url)
    client.hset(
        STATS,
        mapping={
            "response_received_count": "1e400",
            "item_scraped_count": "abc",
            "log_count/ERROR": "nan",
            "retry/count": "inf",
            "scheduler/acked": "12",
            "scheduler/acked/late": "1.7e308",  # finite, but a sum with another such would not be
            "log_count/CRITICAL": "1.7e308",
        },
    )
    client.hset(META, mapping={"started_at": "1e300", "updated_at": "nan", "seen": "-3"})
    client.set("{news}:pages:" + str(int(client.time()[0]) // 60), "x\xff")
    client.set(COUNT, "-5")  # the queue's count: no worker leaves it below zero
    done = status(redis_url, "--json")
    assert done.returncode == 0, done.stderr
    reading = no_nan(done.stdout)
    assert reading["done"] == 12 and reading["pages"] == 0 and reading["items"] == 0
    assert reading["queued"] == 0
    assert reading["unreadable"] == {"stats": 6, "meta": 3, "pages": 1, "keys": 1}
    assert reading["started_at"] is None and reading["seen"] is None
    done = status(redis_url)
    assert done.returncode == 0 and "unreadable keys: 1 · meta: 3 · pages: 1 · stats: 6" in done.stdout, (
        done.stderr
    )
    for ms, pages in ((1000, "-1.7e308"), (61000, "1.7e308"), (121000, "1e400")):  # the charts' series
        client.xadd("{news}:series", {"pages": pages, "items": "5"}, id=f"{ms}-0")
    state, _ = dashboard_reading(redis_url)
    assert state["progress"]["done"] == 12 and state["unreadable"]["stats"] == 6


def test_a_dupefilter_layout_no_worker_stored_leaves_the_count_unknown(redis_url: str) -> None:
    client = redis.Redis.from_url(redis_url)
    reader = StatusReader(Settings({"REDIS_URL": redis_url}), "news")  # status' own reader, in-process
    for layout in (
        {"mode": "set", "shards": "0"},
        {"mode": "set", "shards": str(2**40)},
        {"mode": "bloom", "bits": "0", "hashes": "3"},
        {"mode": "bloom", "bits": "64", "hashes": "0"},
        {"mode": "what"},
    ):
        client.delete(SEEN_META)
        client.hset(SEEN_META, mapping=layout)
        reading = no_nan(json.dumps(asdict(reader.read())))
        assert reading["seen"] is None and reading["unreadable"] == {"seen": 1}, layout
    client.delete(SEEN_META)
    client.hset(SEEN_META, mapping={"mode": "bloom", "bits": "64", "hashes": "3", "capacity": "10"})
    client.hset("{news}:seen:bloom", "a", "b")  # the filter's key of another type than a string
    done = status(redis_url, "--json")
    assert done.returncode == 0, done.stderr
    assert no_nan(done.stdout)["unreadable"] == {"seen": 1}


def test_a_key_of_another_type_is_a_problem_of_that_key(redis_url: str) -> None:
    client = redis.Redis.from_url(redis_url)
    register_workers(client, {"good": worker_entry()})
    client.hset(META, "started_at", "1700000000")
    for key in (STATS, "{news}:requests:count", "{news}:series", SEED_KEY):
        client.rpush(key, "x")
    done = status(redis_url, "--json")
    assert done.returncode == 0, done.stderr
    reading = no_nan(done.stdout)
    # stats, queue and the series (status' alerts read the drop_share window from it since issue 23)
    assert reading["unreadable"] == {"keys": 3} and [w["id"] for w in reading["workers"]] == ["good"]
    state, _ = dashboard_reading(redis_url)
    assert state["unreadable"] == {"keys": 4} and state["crawl"]["phase"] == "waiting for a seed"


def test_metrics_labels_stay_put_and_counters_never_go_down() -> None:
    labels = StableLabels(limit=2)
    assert labels.bound({"a": 5, "b": 3, "c": 1}) == {"a": 5, "b": 3, "other": 1}
    # c overtakes b: no re-ranking, so b's label stays and "other" (c) only grows
    assert labels.bound({"a": 5, "b": 3, "c": 9, "d": 2}) == {"a": 5, "b": 3, "other": 11}
    floor = CounterFloor()

    def snapshot(done: int, drops: dict[str, int], started: str | None = "t0") -> dict[str, Any]:
        return {
            "crawl": {"started_at": started, "phase": "crawling"},
            "progress": {"queued": 0, "leased": 0, "done": done, "fraction": None, "eta_seconds": None},
            "counts": {
                **dict.fromkeys(("pages", "items", "dead_letters", "store_buffered"), 0),
                **dict.fromkeys(("workers_live", "workers_gone"), 0),
                "seen": None,
            },
            "error_kinds": {},
            "dead_reasons": drops,
            **{"outcomes": {}, "unfetched": {}, "alerts": []},
        }

    def samples(reading: dict[str, Any]) -> dict[tuple[str, str], float]:
        return {
            (sample.name, json.dumps(sample.labels)): sample.value
            for family in crawl_metrics(reading, floor)
            for sample in family.samples
            if family.type == "counter"
        }

    first = samples(snapshot(10, {"a": 5, "other": 4}))
    second = samples(snapshot(7, {"a": 5, "other": 2}))  # a reading that saw less (a field skipped)
    assert all(second[key] >= value for key, value in first.items())
    assert second[("sharedcrawl_done_total", "{}")] == 10
    unknown = samples(snapshot(3, {"a": 5}, started=None))  # its start unreadable for a reading
    assert unknown[("sharedcrawl_done_total", "{}")] == 10
    restarted = samples(snapshot(1, {"a": 1}, started="t1"))  # a new crawl: a real restart
    assert restarted[("sharedcrawl_done_total", "{}")] == 1


# -- fuzz: any content of the keys the readers read ---------------------------------------------------

_NUMBERS = st.one_of(
    st.integers(min_value=-(2**70), max_value=2**70).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.sampled_from(["nan", "-inf", "1e400", "1e300", "-0", "0x10", "١٢", "1_000", " 5 ", "", "9" * 5000]),
)
_VALUES = st.one_of(_NUMBERS, st.binary(max_size=40), st.text(max_size=20))
_JSON_VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**80), max_value=2**80),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=10),
    st.sampled_from(["\ud800", "x\udcff", "\x1b[2J", "\u202e"]),
    st.lists(st.integers(), max_size=3),
)
_ENTRY = st.one_of(
    st.fixed_dictionaries(
        {},
        optional={
            name: _JSON_VALUES
            for name in (
                *("host", "pid", "started_at", "pages", "items", "heartbeat", "node", "job", "version"),
                *("errors", "buffered"),
            )
        },
    ).map(lambda entry: json.dumps(entry).encode()),
    st.binary(max_size=30),
    st.just(b"[" * 3000 + b"]" * 3000),
)
_STAT_NAMES = st.sampled_from(
    [
        *("response_received_count", "item_scraped_count", "scheduler/acked", "scheduler/acked/late"),
        *(
            "log_count/ERROR",
            "retry/count",
            "scheduler/dead",
            "scheduler/dead/bad_json",
            "retry/reason_count/x",
        ),
        *("solidot/dropped/no_title", "solidot/validate/dropped/bad_time", "solidot/dedupe/new"),
        *("downloader/exception_type_count/x", "solidot/store/failed"),
    ]
) | st.binary(min_size=1, max_size=20)
_META_NAMES = st.sampled_from(["started_at", "updated_at", "finished_at", "seen", "seen_exact"])
_LAYOUTS = st.fixed_dictionaries(
    {},
    optional={
        "mode": st.sampled_from(["set", "bloom", "x"]),
        "shards": st.sampled_from(["0", "1", "3", "-1", "x", "99999999999"]),
        "bits": st.sampled_from(["0", "64", "4294967297", "x"]),
        "hashes": st.sampled_from(["0", "3", "100000"]),
        "capacity": _NUMBERS,
        "intset_limit": _NUMBERS,
    },
)
_READINGS = st.fixed_dictionaries(
    {
        "stats": st.dictionaries(_STAT_NAMES, _VALUES, max_size=8),
        "meta": st.dictionaries(_META_NAMES, _VALUES, max_size=5),
        "workers": st.lists(
            st.tuples(
                st.binary(min_size=1, max_size=12),
                st.one_of(st.floats(min_value=-1e20, max_value=1e20), st.sampled_from([float("inf"), 0.0])),
                _ENTRY,
            ),
            max_size=4,
        ),
        "pages": st.lists(_VALUES, max_size=5),
        "layout": _LAYOUTS,
        "seed": st.dictionaries(st.sampled_from(["crawl", "scope", "seeded_at"]), _VALUES, max_size=3),
        "series": st.lists(
            st.tuples(
                st.integers(min_value=1, max_value=2**40),
                st.dictionaries(
                    st.sampled_from(["pages", "items", "done", "queued", "err_http"]), _NUMBERS, max_size=4
                ),
            ),
            max_size=4,
        ),
        "wrong_type": st.sets(st.sampled_from(ALL_KEYS), max_size=3),
        "queued": st.one_of(st.none(), _VALUES),
    }
)


def _write(client: redis.Redis, reading: dict[str, Any]) -> None:
    client.flushall()
    pipe = client.pipeline(transaction=False)
    if reading["stats"]:
        pipe.hset(STATS, mapping=reading["stats"])
    if reading["meta"]:
        pipe.hset(META, mapping=reading["meta"])
    for worker_id, beat, entry in reading["workers"]:
        pipe.zadd(WORKERS, {worker_id: beat})
        pipe.hset(INFO, worker_id, entry)
    minute = int(client.time()[0]) // 60
    for back, value in enumerate(reading["pages"]):
        pipe.set(f"{{news}}:pages:{minute - back}", value)
    if reading["layout"]:
        pipe.hset(SEEN_META, mapping=reading["layout"])
    if reading["seed"]:
        pipe.hset(SEED_KEY, mapping=reading["seed"])
    for ms, fields in sorted(reading.get("series", ()), key=lambda point: point[0]):
        if fields:
            pipe.xadd("{news}:series", fields, id=f"{ms}-*")
    if reading.get("queued") is not None:
        pipe.set(COUNT, reading["queued"])
    for key in reading.get("wrong_type", ()):  # a key of another type than the readers expect
        pipe.delete(key)
        pipe.rpush(key, "x")
    pipe.execute()


def test_fuzz_any_redis_content_never_breaks_status_the_dashboard_or_metrics(redis_url: str) -> None:
    client = redis.Redis.from_url(redis_url)
    settings_ = Settings({"REDIS_URL": redis_url})
    reader = StatusReader(settings_, "news")

    @settings(
        max_examples=EXAMPLES,
        derandomize=SEED is None,
        database=None,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(reading=_READINGS)
    def check(reading: dict[str, Any]) -> None:
        _write(client, reading)
        read = reader.read()
        no_nan(json.dumps(asdict(read)))
        render(read).encode()  # a terminal can show it (its numbers are the JSON's: checked above)
        dashboard = DashboardReader(settings_, "news")
        dashboard_reading(redis_url, dashboard)
        dashboard_reading(redis_url, dashboard)  # a second refresh: the rates, the floors

    if SEED is not None:
        check = seed(int(SEED))(check)
    check()


@pytest.mark.parametrize("options", [(), ("--json",)])
def test_status_on_fuzzed_content_the_command_itself(redis_url: str, options: tuple[str, ...]) -> None:
    """The real command on the worst of the fuzz's values at once: exit 0, strict JSON."""
    client = redis.Redis.from_url(redis_url)
    _write(
        client,
        {
            "stats": {b"\xff\xfe": b"\xff", "scheduler/acked": "9" * 5000, "retry/count": "-inf"},
            "meta": {"started_at": "-1", "finished_at": "1e20", "seen": "nan"},
            "workers": [(b"\xff", float("inf"), b"\xff"), (b"w", 0.0, b"[" * 3000)],
            "pages": ["1e400", "-5", "\x00"],
            "layout": {"mode": "set", "shards": "x"},
            "seed": {"seeded_at": "nan"},
        },
    )
    done = status(redis_url, *options)
    assert done.returncode == 0 and "Traceback" not in done.stderr, done.stderr
    if options:
        no_nan(done.stdout)
