"""MongoDB bytes per story: the BSON size of stored documents, over a sample of the whole history.

Each sampled story is the replica's exact item for that sid (the same item a crawl
stores), turned into the document the store inserts (``storage.documents``:
the item's fields, its content hash and hash history, first/last seen, fetch
count, the ``published`` date). Prints the mean, median and largest BSON size,
by era, and the estimate for the full archive. On disk, MongoDB's WiredTiger
compresses documents (snappy) and adds the ``sid`` index, so this is the size
before compression, an upper bound for planning.

    .venv/bin/python bench/story_size.py --sample 3000
"""

from __future__ import annotations

import argparse
import statistics
from datetime import UTC, datetime

import bson

from solidot_replica import Replica, ReplicaConfig
from solidot_spider.archive.documents import story_write

FULL_HISTORY = 85572
ERAS = ((2006, 2021, "2006–2021"), (2022, 2023, "2022–2023"), (2024, 2026, "2024–2026"))


def stored_document(item: dict, seen_at: datetime) -> dict:
    """The document an upsert of ``item`` creates in an empty collection."""
    write = story_write({**item, "fetched_at": seen_at.isoformat()}, seen_at)
    update = write.upsert_update
    return {
        "sid": write.sid,
        **update["$setOnInsert"],
        "last_seen": update["$max"]["last_seen"],
        "fetch_count": 1,
        "categories": update["$addToSet"]["categories"]["$each"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sample", type=int, default=3000, help="stories sampled evenly over the history")
    args = parser.parse_args()
    model = Replica(ReplicaConfig(stories=FULL_HISTORY, last_sid=FULL_HISTORY))
    sids = model.sids()
    step = max(1, len(sids) // args.sample)
    now = datetime.now(UTC)
    sizes: dict[str, list[int]] = {label: [] for _, _, label in ERAS}
    every: list[int] = []
    for sid in sids[::step]:
        item = model.truth(sid, "https://www.solidot.org")
        size = len(bson.encode(stored_document(item, now)))
        every.append(size)
        year = int(item["published_at"][:4])
        label = next(label for first, last, label in ERAS if first <= year <= last)
        sizes[label].append(size)
    print(f"{len(every)} stories sampled of {len(sids)} (every {step}th sid)")
    print("era        stories  mean B  median B  max B")
    for label, values in [*sizes.items(), ("all", every)]:
        if values:
            print(
                f"{label:<10} {len(values):>7}  {statistics.mean(values):6.0f}  "
                f"{statistics.median(values):8.0f}  {max(values):5d}"
            )
    total = statistics.mean(every) * len(sids)
    print(f"full archive: {len(sids)} stories ≈ {total / 2**20:.0f} MiB of BSON before compression")


if __name__ == "__main__":
    main()
