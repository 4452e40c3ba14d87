"""Shared fixtures: the 300-story replica (≥ 30 days, sid 80222 inside) and its truth."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from harness import ReplicaServer, replica_server

from solidot_replica import Replica, ReplicaConfig

#: fixtures mongo / mongo_db_name (a MongoDB wire-protocol server) and redis_srv / redis_url (a private Redis)
pytest_plugins = ("mongo_fixtures", "redis_fixtures")

STORIES, LAST_SID = 300, 80300


@pytest.fixture(scope="session")
def replica_model() -> Replica:
    return Replica(ReplicaConfig(stories=STORIES, last_sid=LAST_SID))


@pytest.fixture(scope="session")
def replica() -> Iterator[ReplicaServer]:
    with replica_server(stories=STORIES, last_sid=LAST_SID) as server:
        yield server
