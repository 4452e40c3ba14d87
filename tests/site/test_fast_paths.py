"""The cheaper paths of a story give exactly what the paths they replace give.

Each fast path is checked against the one it replaces, on hostile input drawn by
hypothesis (derandomized, no example database, bounded in examples, as the fuzz test is):

* compiled XPath on lxml elements finds the nodes and strings parsel finds, on mutated pages;
* :func:`~solidot_spider.site.items.item_dict` is ``ItemAdapter(item).asdict()``, and clean through
  :func:`~solidot_spider.site.items.item_fields` cleans as through ``ItemAdapter``;
* the JSON Lines feed exporter writes the bytes Scrapy's writes;
* the safe-form proof of a body never changes the answer of validate's lxml check.
"""

from __future__ import annotations

import copy
import io
from typing import Any

import nh3
from hypothesis import HealthCheck, event, given, seed, settings
from hypothesis import strategies as st
from itemadapter import ItemAdapter
from lxml import etree
from parsel import Selector
from scrapy.exporters import JsonLinesItemExporter
from scrapy.utils.test import get_crawler
from test_fuzz_parsing import BASE_URL, EXAMPLES, SEED, Page, hostile_page
from test_pipelines import HOSTILE

from solidot_replica import Replica, ReplicaConfig
from solidot_replica.render import body_html as render_body
from solidot_spider.crawl.feed import StoryJsonLinesExporter
from solidot_spider.crawl.pipelines.clean import (
    CleanPipeline,
    clean_block,
    clean_line,
    normalize_block,
    normalize_line,
)
from solidot_spider.crawl.pipelines.validate import body_problem, markup_problem
from solidot_spider.site import selectors as css
from solidot_spider.site.items import Comment, Story, Topic, item_dict, item_fields
from solidot_spider.site.parsing import compile_selector, html_root
from solidot_spider.site.safe_form import MAX_DEPTH, is_safe_form
from solidot_spider.site.sanitize import ALLOWED_TAGS, CLEANER_OPTIONS, sanitize_body

FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=SEED is None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.large_base_example],
)
#: Like the fuzz test: deterministic in CI; FUZZ_EXAMPLES=N FUZZ_SEED=S runs another, longer campaign.
SEEDED = seed(int(SEED or 0))

# --- compiled selectors against parsel ----------------------------------------------------------

#: Every HTML selector of the parser (the RSS one is XPath over XML, evaluated by parsel still).
SELECTORS = {
    name: value
    for name, value in vars(css).items()
    if name.isupper()
    and isinstance(value, str)
    and name != "RSS_ITEM_LINKS"
    and not name.startswith(("ROOT_", "_"))
}
#: The page-wide lookups' XPath from the root (``ROOT_<NAME>``) and the CSS they stand for (``<NAME>``).
FROM_ROOT = {name: name.removeprefix("ROOT_") for name in vars(css) if name.startswith("ROOT_")}
COMPILED = {name: compile_selector(value) for name, value in SELECTORS.items()}
#: Where the parser evaluates selectors: the page, story blocks, bylines, comment items and boxes.
CONTEXTS = etree.XPath(
    "/* | //li | //div[contains(@class, 'block_m') or contains(@class, 'talk_time') or contains(@class, 'list_com')]"
)


def parsel_result(context: etree._Element, selector: str) -> list[Any]:
    """What parsel gives for ``selector`` on ``context``: elements, or strings for text."""
    found = Selector(root=context, type="html")
    results = found.xpath(selector) if selector.startswith("./") else found.css(selector)
    return [r.root if isinstance(r.root, etree._Element) else r.get() for r in results]


def same(ours: list[Any], theirs: list[Any]) -> bool:
    return len(ours) == len(theirs) and all(
        a is b if isinstance(a, etree._Element) else (type(a) is str and a == b)
        for a, b in zip(ours, theirs, strict=True)
    )


@FUZZ
@SEEDED
@given(hostile_page())
def test_compiled_selectors_find_what_parsel_finds_on_a_mutated_page(
    case: tuple[Page, str, list[str]],
) -> None:
    _, text, mutations = case
    root, _ = html_root(text)
    for context in CONTEXTS(root)[:20]:
        for name, selector in SELECTORS.items():
            ours, theirs = COMPILED[name](context), parsel_result(context, selector)
            assert same(ours, theirs), (name, mutations)
    for name, css_name in FROM_ROOT.items():
        ours, theirs = compile_selector(getattr(css, name))(root), parsel_result(root, SELECTORS[css_name])
        assert same(ours, theirs), (name, mutations)


@st.composite
def page_of_classes(draw: st.DrawFn, depth: int = 0) -> str:
    """A random tree of the elements the page-wide selectors name: nested, missing or misplaced."""
    children = "".join(draw(st.lists(page_of_classes(depth + 1), max_size=3))) if depth < 4 else ""
    tag = draw(st.sampled_from(["div", "div", "b", "ul", "span", "li"]))
    names = ["block_m", "block_r", "content", "statement", "reply_list", "reply_ul", "block_mx", "Content"]
    classes = " ".join(draw(st.lists(st.sampled_from(names), max_size=2)))
    center = ' id="center"' if draw(st.integers(0, 4)) == 0 else ""
    text = draw(st.sampled_from(["", "7", " 本文已被查看 3 次 "]))
    return f'<{tag} class="{classes}"{center}>{text}{children}</{tag}>'


@FUZZ
@SEEDED
@given(page_of_classes())
def test_the_page_wide_lookups_from_the_root_find_what_their_css_finds(page: str) -> None:
    root, _ = html_root(f"<html><body>{page}</body></html>")
    for name, css_name in FROM_ROOT.items():
        ours, theirs = compile_selector(getattr(css, name))(root), parsel_result(root, SELECTORS[css_name])
        assert same(ours, theirs), name


# --- item_dict against itemadapter --------------------------------------------------------------

SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=False),
    st.text(max_size=8),
    st.sampled_from(["\ud800", "<script>", "汉字\u3000", ""]),
)


def nested(children: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """Containers of everything a hostile item may hold: lists, tuples, dicts, topics, comments."""
    return st.one_of(
        st.lists(children, max_size=3),
        st.tuples(children, children),
        st.dictionaries(st.text(max_size=4), children, max_size=3),
        st.builds(Topic, tid=children, name=children),
        st.builds(Comment, *[children] * 8),
    )


VALUES = st.recursive(SCALARS, nested, max_leaves=12)


def story(values: st.SearchStrategy[Any]) -> st.SearchStrategy[Story]:
    return st.builds(Story, **{name: values for name in Story.__dataclass_fields__})


def outcome(convert: Any, item: Any) -> Any:
    """The value, or the type of the exception: both paths must fail alike too."""
    try:
        return convert(item)
    except Exception as error:
        return type(error)


@FUZZ
@SEEDED
@given(st.one_of(story(VALUES), st.dictionaries(st.text(max_size=6), VALUES, max_size=5), VALUES))
def test_item_dict_is_itemadapters_asdict(item: Any) -> None:
    expected = outcome(lambda i: ItemAdapter(i).asdict(), item)
    got = outcome(item_dict, item)
    assert got == expected and type(got) is type(expected)
    if isinstance(expected, dict):
        assert repr(got) == repr(expected)  # nested types too: a tuple stays a tuple, a list a list


def test_item_dict_copies_containers_and_follows_deleted_fields() -> None:
    item = Story(1, "u", "t", "a", None, "p", topics=[Topic(3, "开源")], department="d")
    del item.department  # itemadapter: hasattr() still finds the class default
    converted = item_dict(item)
    assert converted == ItemAdapter(item).asdict() and converted["department"] is None
    converted["topics"][0]["name"] = "x"
    assert item.topics[0].name == "开源"


CLEAN = CleanPipeline(get_crawler(settings_dict={"SOLIDOT_BASE_URL": BASE_URL}))
#: What clean changes: entities, odd spaces, decomposed accents, times in other forms, unsafe URLs.
DIRTY_TEXT = st.one_of(
    st.text(alphabet=" \u3000\xa0\u200b&amp;;e\u0301\n<p>x", max_size=12),
    st.sampled_from(
        ["来自月海沉船部门", "2025-01-03T06:01:00+00:00", "2026-07-27 14:05", "2025年01月03日 14时01分"]
    ),
    st.sampled_from(
        [" HTTPS://Example.COM/a b ", "javascript:alert(1)", f"{BASE_URL}/story?sid=7", "\ud800"]
    ),
)
DIRTY = st.one_of(DIRTY_TEXT, DIRTY_TEXT, VALUES)


def dirty_story() -> st.SearchStrategy[Story]:
    """Stories with values of the right type but dirty, and now and then of any type at all."""
    topics = st.lists(st.one_of(st.builds(Topic, tid=st.integers(), name=DIRTY), VALUES), max_size=2)
    comments = st.lists(st.one_of(st.builds(Comment, *[DIRTY] * 8), VALUES), max_size=2)
    fields = {name: DIRTY for name in Story.__dataclass_fields__}
    fields |= {"sid": st.sampled_from([7, 8, "7"]), "topics": topics, "comments": comments}
    fields |= {"references": st.lists(DIRTY, max_size=3), "body_text": st.sampled_from(["", " a\n\n\nb "])}
    return st.builds(Story, **fields)


@FUZZ
@SEEDED
@given(dirty_story())
def test_clean_through_item_fields_is_clean_through_itemadapter(item: Story) -> None:
    ours, theirs = item, copy.deepcopy(item)
    changed = outcome(lambda i: CLEAN.clean(item_fields(i)), ours)
    assert changed == outcome(lambda i: CLEAN.clean(ItemAdapter(i)), theirs)
    assert repr(ours) == repr(theirs)
    event(f"{sum(changed.values()) if isinstance(changed, dict) else changed} fields changed")


# --- the JSON Lines feed against Scrapy's exporter -------------------------------------------------


def exported(exporter_class: type[JsonLinesItemExporter], item: Any, **options: Any) -> Any:
    out = io.BytesIO()
    exporter = exporter_class(out, encoding="utf-8", **options)
    try:
        exporter.export_item(item)
    except Exception as error:
        return type(error)
    return out.getvalue()


JSON_VALUES = st.recursive(
    SCALARS,
    lambda children: st.one_of(
        st.lists(children, max_size=3),
        st.dictionaries(st.text(max_size=4), children, max_size=3),
        st.builds(Topic, tid=children, name=children),
        st.builds(Comment, *[children] * 8),
    ),
    max_leaves=12,
)


@FUZZ
@SEEDED
@given(story(JSON_VALUES))
def test_the_feed_writes_the_bytes_scrapys_exporter_writes(item: Story) -> None:
    assert exported(StoryJsonLinesExporter, item) == exported(JsonLinesItemExporter, item)


def test_the_feed_takes_scrapys_path_for_chosen_fields_and_other_items() -> None:
    item = Story(1, "u", "t", "a", None, "p", topics=[Topic(3, "开源")])
    for options in ({"fields_to_export": ["sid", "topics"]}, {}):
        ours = exported(StoryJsonLinesExporter, item, **options)
        assert ours == exported(JsonLinesItemExporter, item, **options)
    assert exported(StoryJsonLinesExporter, item, fields_to_export=["sid"]) == b'{"sid": 1}\n'
    as_dict = ItemAdapter(item).asdict()
    assert exported(StoryJsonLinesExporter, as_dict) == exported(StoryJsonLinesExporter, item)


# --- the safe-form proof against the lxml check ---------------------------------------------------

TAG_NAMES = [
    *sorted(ALLOWED_TAGS),
    *("script", "style", "iframe", "svg", "math", "template", "form", "object", "embed", "base", "meta"),
    *("textarea", "title", "xmp", "plaintext", "noscript", "select", "html", "body", "P", "IMG", "A"),
]
ATTRIBUTE_NAMES = [
    *("href", "src", "title", "alt", "width", "colspan", "onclick", "ONLOAD", "onerror", "style"),
    *("xlink:href", "srcset", "formaction", "data", "background", "HREF", "on"),
]
URL_VALUES = [
    *("https://x.example/?a=1&amp;b=2", "/story?sid=1", "mailto:a@b", "javascript:alert(1)"),
    *(" JaVa\tScRiPt:alert(1)", "java&#x09;script:x", "javascript&#58;x", "javascript&colon;x"),
    *("&#106;avascript:x", "java%09script:x", "data:text/html,<script>", "vbscript:x", "&amp;#58;"),
    *("java\x01script:x", "java\nscript:x", "1:2", "http:\ud800", "&javascript:", "x&amp"),
]
TEXTS = [
    *("文本", " ", "a &lt;b&gt; &amp; c", "&", "<", ">", "<!--", "-->", "<![CDATA[", "<?xml ?>"),
    *("</", "<!doctype html>", "\x00", "\x0c", "\ud800", "\u2028", "\r\n", "&#60;script&#62;"),
]


@st.composite
def tag(draw: st.DrawFn) -> str:
    """A start or end tag in the serializer's form or a slightly (or very) different one."""
    name = draw(st.sampled_from(TAG_NAMES))
    if draw(st.integers(0, 4)) == 0:
        return f"</{name}>"
    attributes = ""
    for _ in range(draw(st.integers(0, 3))):
        attribute = draw(st.sampled_from(ATTRIBUTE_NAMES))
        value = draw(st.sampled_from(URL_VALUES + TEXTS)).replace('"', "&quot;")
        quote = draw(st.sampled_from(['"', '"', '"', "'", ""]))
        attributes += f" {attribute}={quote}{value}{quote}"
    return f"<{name}{attributes}{draw(st.sampled_from(['>', '>', '>', '/>', ' >']))}"


@st.composite
def fragment(draw: st.DrawFn) -> str:
    """Hostile markup, raw or as nh3 writes it, sometimes nested about as deep as the proof goes."""
    parts = draw(st.lists(st.one_of(tag(), st.sampled_from(TEXTS), st.text(max_size=5)), max_size=12))
    markup = "".join(parts)
    if draw(st.booleans()):
        depth = draw(st.sampled_from([2, MAX_DEPTH - 1, MAX_DEPTH, MAX_DEPTH + 1, 2100]))
        inner = draw(st.sampled_from(["span", "div", "b", "li", "table", "a"]))
        markup = f"<{inner}>" * depth + markup + f"</{inner}>" * depth
    return sanitize_body(markup.replace("\ud800", "?")) if draw(st.booleans()) else markup


@FUZZ
@SEEDED
@given(fragment())
def test_the_safe_form_proof_changes_no_answer_of_the_lxml_check(markup: str) -> None:
    full = outcome(markup_problem, markup)  # a Problem, None, or what it raises (validate: check_failed)
    proven = is_safe_form(markup)
    event("proven safe" if proven else f"left to lxml: {getattr(full, 'reason', full)}")
    if proven:
        assert full is None, full
    assert outcome(body_problem, markup) == full


def test_sanitized_bodies_are_proven_without_parsing() -> None:
    """The point of the proof: what clean stores takes the cheap path (the replica's bodies, hostile ones)."""
    replica = Replica(ReplicaConfig(stories=300, last_sid=80300))
    bodies = [sanitize_body(render_body(replica.story(sid))) for sid in replica.sids()[:100]]
    bodies += [sanitize_body(HOSTILE * 3), sanitize_body('<a href="https://x.example/?q=1&b=2">x</a>')]
    assert all(is_safe_form(body) for body in bodies)
    assert not is_safe_form("<span>" * (MAX_DEPTH + 1) + "x" + "</span>" * (MAX_DEPTH + 1))


@FUZZ
@SEEDED
@given(fragment())
def test_the_prebuilt_sanitizer_cleans_as_nh3_clean_does(markup: str) -> None:
    markup = markup.replace("\ud800", "?")  # nh3 takes UTF-8: clean repairs surrogates first
    assert sanitize_body(markup) == nh3.clean(markup, **CLEANER_OPTIONS).strip()


# --- clean's shortcut for text that is clean already -------------------------------------------

#: Whatever the normalizations look at: spaces of every kind, line breaks, entities, accents.
TRICKY_TEXT = st.text(
    alphabet=st.sampled_from(
        list(" \n\r\t\x0b\x0c\x1c\x85\u2028\u3000\xa0\u200b\ufeff&;amp#x3e\u0301éa汉\ud800")
    ),
    max_size=14,
)


@FUZZ
@SEEDED
@given(st.one_of(TRICKY_TEXT, st.sampled_from(["a\n\nb", "a b\nc", "汉 字", "", "a\n\n\nb", " a", "a\n"])))
def test_clean_text_shortcuts_answer_as_the_full_normalization(text: str) -> None:
    assert clean_line(text) == normalize_line(text)
    assert clean_block(text) == normalize_block(text)
