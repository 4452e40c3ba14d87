"""Fuzzing the WARC reader with random and mutated files: never an exception, every intact fetch read.

Mutated files are made from a sample file (the recorder's records, see ``warc_samples``) member by
member: each kept, flipped, cut short, dropped, or with garbage (often a fake gzip header) put
before it; or byte by byte (flips, cuts, splices). The properties:

* the reader raises nothing, whatever the bytes;
* every fetch whose members are all kept, with nothing put between them, is read; what is read is
  the sample's fetches, in order, each with its own body (nothing made up);
* a fetch with a member left in the file that is not read is counted (``torn`` or ``damaged``).

Deterministic for CI: derandomized, no example database, bounded in examples.
``FUZZ_EXAMPLES=5000`` runs a longer campaign locally, ``FUZZ_SEED=N`` another one (random,
from that seed).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, event, given, seed, settings
from hypothesis import strategies as st
from warc_samples import sample

from scrapy_sharedcrawl.warc.reader import WarcReader

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "200"))
SEED = os.environ.get("FUZZ_SEED")
MAGIC = b"\x1f\x8b\x08"

SAMPLE = sample(12, revisit_every=5)
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=SEED is None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

GARBAGE = st.one_of(
    st.binary(max_size=200),
    st.binary(max_size=200).map(lambda data: MAGIC + data),  # a fake member's head
    st.sampled_from(SAMPLE.members).map(lambda member: member[: len(member) // 2]),  # a cut member
)
#: What becomes of one member: ("keep",), ("flip", at, xor), ("cut", at), ("drop",), ("before", garbage)
OPERATION = st.one_of(
    st.just(("keep",)),
    st.tuples(st.just("flip"), st.integers(0, 1 << 16), st.integers(1, 255)),
    st.tuples(st.just("cut"), st.integers(0, 1 << 16)),
    st.just(("drop",)),
    st.tuples(st.just("before"), GARBAGE),
)


def read(data: bytes) -> tuple[list[tuple[str, bytes]], WarcReader]:
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "fuzzed.warc.gz"
        path.write_bytes(data)
        reader = WarcReader()
        got = [(response.uri, response.body) for response in reader.responses([path])]
    return got, reader


def original_responses() -> list[tuple[str, bytes]]:
    got, reader = read(SAMPLE.data)
    assert len(got) == len([uri for uri in SAMPLE.uris if uri]) and not reader.skipped.keys() - {"revisit"}
    return got


ORIGINAL = original_responses()


def is_subsequence(part: list[tuple[str, bytes]], whole: list[tuple[str, bytes]]) -> bool:
    remaining = iter(whole)
    return all(item in remaining for item in part)


def lost(reader: WarcReader) -> int:
    return reader.skipped["torn"] + reader.skipped["damaged"]


@FUZZ
@seed(int(SEED or 0))
@given(st.binary(max_size=4000))
def test_random_bytes_never_raise(data: bytes) -> None:
    got, _ = read(data)
    assert got == []


@FUZZ
@seed(int(SEED or 0))
@given(st.lists(st.one_of(st.binary(max_size=300), st.sampled_from(SAMPLE.members)), max_size=12))
def test_members_and_garbage_in_any_order_never_raise(pieces: list[bytes]) -> None:
    got, _ = read(b"".join(pieces))
    assert all(item in ORIGINAL for item in got)  # each a fetch of the sample, as it was


@FUZZ
@seed(int(SEED or 0))
@given(st.lists(OPERATION, min_size=len(SAMPLE.members), max_size=len(SAMPLE.members)))
def test_every_intact_fetch_is_read_and_every_lost_one_counted(operations: list[tuple]) -> None:
    pieces: list[bytes] = []
    intact = [True] * len(SAMPLE.uris)  # all its members kept, nothing put between them
    present = [False] * len(SAMPLE.uris)  # some of its bytes are in the file
    previous_fetch: int | None = None
    for member, fetch, operation in zip(SAMPLE.members, SAMPLE.fetch_of, operations, strict=True):
        kind = operation[0]
        event(kind)
        if kind == "keep":
            pieces.append(member)
        elif kind == "before":
            pieces.append(operation[1])
            if fetch is not None and fetch == previous_fetch:
                intact[fetch] = False
            pieces.append(member)
        elif kind == "flip":
            damaged = bytearray(member)
            damaged[operation[1] % len(damaged)] ^= operation[2]
            pieces.append(bytes(damaged))
        elif kind == "cut":
            pieces.append(member[: operation[1] % len(member)])
        if fetch is not None:
            present[fetch] = present[fetch] or kind != "drop"
            intact[fetch] = intact[fetch] and kind in ("keep", "before")
        previous_fetch = fetch
    got, reader = read(b"".join(pieces))
    assert is_subsequence(got, ORIGINAL)
    expected = [(uri, dict(ORIGINAL)[uri]) for fetch, uri in enumerate(SAMPLE.uris) if uri and intact[fetch]]
    assert is_subsequence(expected, got)
    missing = [
        fetch for fetch, uri in enumerate(SAMPLE.uris) if uri and present[fetch] and uri not in dict(got)
    ]
    if missing:
        assert lost(reader) >= 1, missing


@FUZZ
@seed(int(SEED or 0))
@given(
    st.lists(
        st.tuples(st.integers(0, len(SAMPLE.data) - 1), st.integers(0, 64), st.binary(max_size=16)),
        min_size=1,
        max_size=6,
    )
)
def test_byte_level_splices_never_raise_nor_make_up_a_fetch(splices: list[tuple[int, int, bytes]]) -> None:
    data = bytearray(SAMPLE.data)
    for at, removed, inserted in splices:
        data[at : at + removed] = inserted
    got, _ = read(bytes(data))
    assert is_subsequence(got, ORIGINAL)
