"""Shared fixtures: the 300-story replica (≥ 30 days, sid 80222 inside) and its truth."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from harness import ReplicaServer, replica_server

from solidot_replica import Replica, ReplicaConfig

#: fixtures mongo / mongo_db_name (a MongoDB wire-protocol server), redis_srv / redis_url (a private Redis,
#: the framework's plugin)
pytest_plugins = ("mongo_fixtures", "scrapy_sharedcrawl.testing.fixtures")

#: The examples' own modules (the site they crawl) serve the tests too.
EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
sys.path.insert(0, str(EXAMPLES))

#: Tests sit in folders by what they test (docs/testing.md) and some import another's helpers by its
#: module name (``from test_pipelines import run``) across folders: every folder is on the path, as
#: ``tests/`` itself is, whichever file pytest collects first (test files' names are unique).
TESTS = Path(__file__).resolve().parent
sys.path.extend(
    str(folder) for folder in sorted(TESTS.iterdir()) if folder.is_dir() and any(folder.glob("test_*.py"))
)

STORIES, LAST_SID = 300, 80300

#: Test modules whose tests run crawls as separate processes (workers, scrapyd nodes): marked
#: ``integration`` so that ``-m "not integration"`` selects the quick unit tests of the modules.
INTEGRATION_MODULES = frozenset(
    {
        "test_ack_durability",
        "test_crawls_into_mongodb",
        "test_cluster",
        "test_crawl",
        "test_dashboard_browser",
        "test_failover",
        "test_faults",
        "test_generic_crawl",
        "test_hostile_crawl",
        "test_politeness",
        "test_redis_examples",
        "test_sharedcrawl_seed",
        "test_sharedcrawl_workers",
        "test_refresh",
        "test_resume",
        "test_scheduler",
        "test_scrapyd",
        "test_store",
    }
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        module = getattr(item, "module", None)  # doctests have none
        if module is not None and module.__name__ in INTEGRATION_MODULES:
            item.add_marker(pytest.mark.integration)


@pytest.fixture(scope="session")
def replica_model() -> Replica:
    return Replica(ReplicaConfig(stories=STORIES, last_sid=LAST_SID))


@pytest.fixture(scope="session")
def replica() -> Iterator[ReplicaServer]:
    with replica_server(stories=STORIES, last_sid=LAST_SID) as server:
        yield server
