"""One damaged gzip member costs only its own fetch: the reader resynchronises at the next member
(one flipped byte in the 2nd member of a 102-fetch file used to drop the 100 fetches after it
silently) and counts every fetch it could not read."""

from __future__ import annotations

from pathlib import Path

import pytest
from warc_samples import sample

from scrapy_sharedcrawl.warc.reader import WarcReader, gzip_members

FETCHES = 102
SAMPLE = sample(FETCHES, revisit_every=25)
ALL_URIS = [uri for uri in SAMPLE.uris if uri]


def read(tmp_path: Path, data: bytes) -> tuple[list[str], WarcReader]:
    path = tmp_path / "damaged.warc.gz"
    path.write_bytes(data)
    reader = WarcReader()
    return [response.uri for response in reader.responses([path])], reader


def flipped(member: int) -> bytes:
    """The file with one byte flipped in the middle of ``member``'s compressed data."""
    members = list(SAMPLE.members)
    damaged = bytearray(members[member])
    damaged[len(damaged) // 2] ^= 0xFF
    members[member] = bytes(damaged)
    return b"".join(members)


def test_an_intact_file_is_read_whole(tmp_path: Path) -> None:
    uris, reader = read(tmp_path, SAMPLE.data)
    assert uris == ALL_URIS
    assert reader.skipped == {"revisit": 4}


# every member of the first fetches, each kind of member of a revisit's fetch, and the last fetch's
@pytest.mark.parametrize("member", [0, 1, 2, 3, 4, 5, 6, *range(76, 79), *range(304, 307)])
def test_one_flipped_byte_costs_its_own_fetch_only(tmp_path: Path, member: int) -> None:
    uris, reader = read(tmp_path, flipped(member))
    fetch = SAMPLE.fetch_of[member]
    lost = SAMPLE.uris[fetch] if fetch is not None else None
    assert uris == [uri for uri in ALL_URIS if uri != lost]
    # the damaged fetch is counted once (torn if the file ends within it); a damaged warcinfo too
    counted = {reason: n for reason, n in reader.skipped.items() if reason != "revisit"}
    assert counted == ({"torn": 1} if member == len(SAMPLE.members) - 1 else {"damaged": 1})


def test_the_issue_s_case_101_of_102_fetches_read(tmp_path: Path) -> None:
    uris, reader = read(tmp_path, flipped(2))  # the 2nd member after the warcinfo: fetch 0's metadata
    assert len(uris) == len(ALL_URIS) - 1 and reader.skipped["damaged"] == 1


def test_garbage_and_a_cut_member_between_fetches_cost_nothing_else(tmp_path: Path) -> None:
    members = list(SAMPLE.members)
    members.insert(4, b"\x1f\x8b\x08\x08 not a member\x00" + bytes(range(256)))  # before fetch 1
    members.insert(8, SAMPLE.members[40][:-9])  # a member cut short, before fetch 2
    uris, reader = read(tmp_path, b"".join(members))
    assert uris == ALL_URIS
    # each stretch that held no whole member is counted once
    assert reader.skipped["damaged"] == 2


def test_a_stretch_over_two_fetches_counts_both(tmp_path: Path) -> None:
    members = list(SAMPLE.members)
    members[3] = members[3][:20]  # fetch 0's request, cut short …
    members[4] = members[4][5:]  # … and fetch 1's response, its head gone
    uris, reader = read(tmp_path, b"".join(members))
    assert uris == [uri for uri in ALL_URIS if uri not in (SAMPLE.uris[0], SAMPLE.uris[1])]
    assert reader.skipped["damaged"] == 2


def test_members_resume_after_a_damaged_one(tmp_path: Path) -> None:
    path = tmp_path / "f.warc.gz"
    path.write_bytes(flipped(1))
    with path.open("rb") as handle:
        members = list(gzip_members(handle))
    offsets = [sum(len(m) for m in SAMPLE.members[:i]) for i in range(len(SAMPLE.members))]
    assert [offset for offset, _ in members] == offsets
    assert [data is None for _, data in members] == [i == 1 for i in range(len(offsets))]
