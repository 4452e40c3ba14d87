"""Compare crawled items with the replica's ground truth, field by field."""

from __future__ import annotations

from typing import Any, Literal

from lxml import html as lxml_html

from solidot_spider.site.items import STORY_FIELDS


def html_structure(fragment: str) -> list[tuple[str, str, str]]:
    """(tag, href-or-src, text) per element, whitespace-normalized: markup compared by meaning."""
    if not fragment.strip():
        return []
    root = lxml_html.fragment_fromstring(fragment, create_parent="div")
    shape: list[tuple[str, str, str]] = [("", "", " ".join((root.text or "").split()))]
    for element in root.iterdescendants():
        if not isinstance(element.tag, str):
            continue
        link = element.get("href") or element.get("src") or ""
        text = " ".join(((element.text or "") + " " + (element.tail or "")).split())
        shape.append((element.tag, link, text))
    return shape


def mismatches(
    item: dict[str, Any],
    truth: dict[str, Any],
    categories: Literal["exact", "subset"] = "exact",
) -> list[str]:
    """Every field where ``item`` differs from ``truth`` (an empty list when they agree)."""
    problems: list[str] = []
    if set(item) != set(STORY_FIELDS):
        problems.append(f"fields {sorted(set(item) ^ set(STORY_FIELDS))} differ from the schema")
    if not item.get("fetched_at", "").endswith("+00:00"):
        problems.append(f"fetched_at {item.get('fetched_at')!r} is not UTC ISO 8601")
    for name, expected in truth.items():
        got = item.get(name)
        if name == "body_html":
            if html_structure(got or "") != html_structure(expected):
                problems.append(f"body_html: {got!r} != {expected!r}")
            if "<script" in (got or "") or " on" in (got or "").lower().replace("\n", " ").split(">")[0]:
                problems.append("body_html not sanitized")
        elif name == "categories" and categories == "subset":
            if not set(got or []) <= set(expected):
                problems.append(f"categories {got} not within {expected}")
        elif got != expected:
            problems.append(f"{name}: {got!r} != {expected!r}")
    return problems


def assert_items_match(
    items: list[dict[str, Any]],
    truths: dict[int, dict[str, Any]],
    categories: Literal["exact", "subset"] = "exact",
) -> None:
    """Exactly one item per expected sid, each equal to its truth."""
    sids = [item["sid"] for item in items]
    duplicates = sorted({sid for sid in sids if sids.count(sid) > 1})
    assert not duplicates, f"stories yielded more than once: {duplicates[:20]}"
    assert sorted(sids) == sorted(truths), (
        f"missing {sorted(set(truths) - set(sids))[:20]}, unexpected {sorted(set(sids) - set(truths))[:20]}"
    )
    problems = {
        item["sid"]: found for item in items if (found := mismatches(item, truths[item["sid"]], categories))
    }
    assert not problems, f"{len(problems)} items differ, e.g. {next(iter(problems.items()))}"
