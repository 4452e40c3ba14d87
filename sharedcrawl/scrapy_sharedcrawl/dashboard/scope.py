"""What a crawl was seeded with, kept next to its shared stats so that a dashboard can say it.

A project's own seed command records the crawl id, its scope (the arguments, as an operator wrote
them) and when, in ``{<spider>}:seed`` (HASH), expiring with the
stats. A crawl seeded by a worker's own ``-a`` arguments has no record: the
dashboard then shows the crawl id alone.
"""

from __future__ import annotations

import redis

#: Longest scope text kept (a scope is a few ranges; anything longer is cut).
MAX_SCOPE = 300


def seed_key(prefix: str) -> str:
    """HASH ``crawl``, ``scope``, ``seeded_at`` (Unix s, Redis time) under the stats prefix."""
    return f"{prefix}:seed"


def record_seed(server: redis.Redis, prefix: str, crawl_id: str, scope: str, ttl_ms: int) -> None:
    """Remember that ``crawl_id`` was seeded with ``scope`` (one round trip)."""
    seconds, micros = server.time()
    pipe = server.pipeline(transaction=True)
    key = seed_key(prefix)
    pipe.hset(
        key, mapping={"crawl": crawl_id, "scope": scope[:MAX_SCOPE], "seeded_at": seconds + micros / 1e6}
    )
    pipe.pexpire(key, ttl_ms)
    pipe.execute()
