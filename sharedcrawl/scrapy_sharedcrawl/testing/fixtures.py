"""Pytest fixtures for a private Redis, a plugin a conftest names:
``pytest_plugins = ("scrapy_sharedcrawl.testing.fixtures",)``."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from scrapy_sharedcrawl.testing.redis_server import RedisServer, redis_server


@pytest.fixture(scope="session")
def redis_srv() -> Iterator[RedisServer]:
    """One redis-server for the whole session, on a free loopback port."""
    with redis_server() as server:
        yield server


@pytest.fixture
def redis_url(redis_srv: RedisServer) -> str:
    """The private Redis's URL, running (a previous test may have stopped it) and empty."""
    redis_srv.start()
    with redis_srv.client() as client:
        client.flushall()
    return redis_srv.url
