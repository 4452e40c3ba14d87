"""Pytest fixtures for MongoDB: one server per session, a fresh database per test.

Register with ``pytest_plugins = ("mongo_fixtures",)`` in conftest.py, or import
the fixtures into a test module.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator

import pytest
from mongo_server import MongoServer, mongo_server
from pymongo import MongoClient


@pytest.fixture(scope="session")
def mongo() -> Iterator[MongoServer]:
    """The session's MongoDB server (mongoeco's memory engine, or ``MONGO_URI``'s server)."""
    with mongo_server() as server:
        yield server


@pytest.fixture
def mongo_db_name(mongo: MongoServer, request: pytest.FixtureRequest) -> Iterator[str]:
    """A database name no other test uses; the database is dropped afterwards."""
    test = re.sub(r"[^A-Za-z0-9_]", "_", request.node.name)[:40]
    name = f"t_{test}_{uuid.uuid4().hex[:8]}"
    yield name
    with MongoClient(mongo.uri, serverSelectionTimeoutMS=5000) as client:
        client.drop_database(name)
