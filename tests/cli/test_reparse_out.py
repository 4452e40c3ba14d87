"""``solidot-crawl reparse --out`` that names a WARC file being read is refused before anything is
written (it used to leave the input at 0 bytes), by whatever path it is named, as ``export`` refuses
``--out`` = ``--from``."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from solidot_spider.cli import main

#: Not a real WARC file: the refusal comes before anything is read.
CONTENT = b"\x1f\x8b\x08\x00 a WARC file's bytes, which must stay as they are"


@pytest.mark.parametrize("way", ["same", "dot-slash", "absolute", "symlink", "hard link", "in a directory"])
def test_out_that_is_an_input_is_refused_and_the_input_is_intact(
    way: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    warc = tmp_path / "warc" / "in.warc.gz"
    warc.parent.mkdir()
    warc.write_bytes(CONTENT)
    monkeypatch.chdir(tmp_path)
    if way == "symlink":
        (tmp_path / "link.warc.gz").symlink_to(warc)
    if way == "hard link":
        os.link(warc, tmp_path / "link.warc.gz")
    out = {
        "same": "warc/in.warc.gz",
        "dot-slash": "./warc/in.warc.gz",
        "absolute": str(warc),
        "in a directory": "warc/in.warc.gz",
    }.get(way, "link.warc.gz")
    read = "warc" if way == "in a directory" else "warc/in.warc.gz"
    status = main(["reparse", read, "--out", out, "--quiet"])
    assert status == 2
    err = capsys.readouterr().err
    assert (
        err.strip() == f"solidot-crawl reparse: --out {Path(out)} is a WARC file to be read (warc/in.warc.gz)"
    )
    assert warc.read_bytes() == CONTENT
    assert sorted(p.name for p in tmp_path.rglob("*")) == sorted(
        ["warc", "in.warc.gz", *(["link.warc.gz"] if "link" in way else [])]
    )


def test_out_that_is_a_directory_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    warc = tmp_path / "in.warc.gz"
    warc.write_bytes(CONTENT)
    status = main(["reparse", str(warc), "--out", str(tmp_path), "--quiet"])
    assert status == 2
    assert "is a directory, not a JSON Lines file" in capsys.readouterr().err
    assert warc.read_bytes() == CONTENT
