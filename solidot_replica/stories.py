"""What each story says: generated from its sid, deterministic, era-faithful.

A :class:`StoryRecord` holds the facts (what a correct crawler must extract);
:mod:`solidot_replica.render` turns them into the markup of the story's
era. sid 80222 is the one real story we hold (``shared/fixtures/story-80222.md``).
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta

from solidot_replica import timeline
from solidot_spider.site.text import BEIJING
from solidot_spider.site.urls import CATEGORIES


@dataclass(frozen=True)
class Link:
    """An inline link in a body line."""

    text: str
    href: str


Inline = str | Link


@dataclass(frozen=True)
class Reference:
    """A line after ``<!--more-->``: a plain URL (``text`` None) or a link with its text."""

    url: str
    text: str | None = None


@dataclass(frozen=True)
class CommentRecord:
    cid: int
    parent_cid: int | None
    author: str
    author_uid: int
    title: str
    score: int
    published_at: datetime
    lines: tuple[str, ...]


@dataclass(frozen=True)
class Topic:
    tid: int
    name: str  # as the page's title attribute has it (171 keeps its trailing space)
    icon: str


@dataclass
class StoryRecord:
    """The facts of one story, and how its page writes them."""

    sid: int
    era: str  # "A" ≤ 2021 inline links, "B" 2022–23 plain-text refs, "C" 2024– lines
    title: str
    title_markup: str  # with entities and stray whitespace, as served
    author: str
    author_uid: int
    published_at: datetime
    topics: list[Topic]
    department: str | None
    department_markup: str | None  # "来自X部门", "来自X" or None
    category: str | None
    paragraphs: list[list[Inline]]
    references: list[Reference] = field(default_factory=list)  # after <!--more--> (eras B, C)
    donation_image: str | None = None  # 2021: an image closing the body
    inline_script: str | None = None  # a stray script between paragraphs (sanitized away)
    views: int = 0
    comments: list[CommentRecord] = field(default_factory=list)
    body_depth: int = 0  # hostile pages: the body wrapped in this many <div>s


EDITORS: tuple[tuple[str, int], ...] = (
    ("Wilson", 42865),
    ("Edwards", 42866),
    ("WinterIsComing", 31822),
    ("wanwan", 42055),
)
TOPICS: tuple[Topic, ...] = (
    Topic(3, "开源", "topicOpenSource.png"),
    Topic(7, "Linux", "topicLinux.png"),
    Topic(13, "游戏", "topicGames.png"),
    Topic(17, "互联网", "topicInternet.png"),
    Topic(22, "AMD", "topicAMD.png"),
    Topic(39, "Firefox", "topicFirefox.png"),
    Topic(53, "Bug", "topicBug.png"),
    Topic(70, "加密技术", "topicCrypto.png"),
    Topic(80, "Intel", "topicIntel.png"),
    Topic(100, "安全", "topicSecurity.png"),
    Topic(124, "超级电脑", "topicSupercomputer.png"),
    Topic(151, "人工智能", "topicAI.png"),
    Topic(171, "Android ", "topicAndroid.png"),
)
DEPARTMENTS = (
    "月海沉船",
    "大头针",
    "谁说不是",
    "长毛象",
    "一切皆有可能",
    "打开天窗",
    "慢慢来",
    "老生常谈",
    "未雨绸缪",
    "意料之中",
)
COMMENTERS: tuple[tuple[str, int], ...] = (
    ("Craynic", 18046),
    ("solidot1550041775", 91234),
    ("lovekernel", 21077),
    ("zhaoyun", 30561),
    ("猫猫虫", 77123),
    ("ichbin", 55002),
)
SUBJECTS = ("研究人员", "开发者", "欧盟委员会", "Mozilla", "微软", "谷歌", "苹果公司", "Linux 基金会", "NASA")
ACTIONS = ("发布了", "宣布放弃", "披露了", "修复了", "正在测试", "起诉了", "开源了", "收购了")
OBJECTS = (
    "新版 Linux 内核",
    "一个存在 20 年的 Bug",
    "基于 Rust 的驱动",
    "AI 模型",
    "量子计算芯片",
    "Firefox 的隐私功能",
    "一颗近地小行星",
    "加密通信协议",
    "Android 更新",
)
CLAUSES = (
    "此举引发了开源社区的广泛讨论",
    "相关代码已经合并到主线",
    "该公司表示将在 2027 年前完成迁移",
    "研究发表在《Nature》期刊上",
    "用户可以在设置中关闭该功能",
    "批评者认为这会损害用户隐私",
    "测试显示性能提升了 15%",
    "监管机构尚未对此发表评论",
)
TITLE_SPICES = ("AT&T", '"开放"', "C++ & Rust", "<head>", "Debian 13")
QUOTES = (
    "如果我们过于爽快地承认失败，就可能使自己发觉不了我们非常接近于正确。——卡尔·波普尔",
    "简单是可靠的先决条件。——艾兹格·迪杰斯特拉",
    "过早的优化是万恶之源。——高德纳",
)
DONATION_IMAGE = "https://img.solidot.org//0/446/{tag}.jpg"

# sid 80222, exactly as shared/fixtures/story-80222.md shows it
FIXTURE_SID = 80222
FIXTURE_TITLE = "普京命令俄罗斯加强与中国在 AI 上的合作"
FIXTURE_BODY = (
    "俄罗斯总统普京下令政府以及联邦储蓄银行(Sberbank)加强与中国在 AI 上的合作。俄罗斯联邦储蓄银行是该国"
    "最大银行，领导了其 AI 研发工作。因俄罗斯入侵乌克兰，西方对俄罗斯的制裁导致了主要芯片公司停止向俄罗斯"
    "出口芯片，遏制了其 AI 野心。联邦储蓄银行 CEO German Gref 在 2023 年承认，用于 AI 的 GPU 芯片是最难取代"
    "的硬件。通过与非西方国家合作，俄罗斯正寻求挑战美国在 AI 上的主导地位。根据 Tortoise Media 的全球 AI "
    "指数，俄罗斯在 83 个国家中排名第 31 位，不仅远远落后于美国和中国，也远远落后于印度和巴西。"
)
FIXTURE_REFERENCE = (
    "https://www.reuters.com/technology/artificial-intelligence/"
    "putin-orders-russian-government-top-bank-develop-ai-cooperation-with-china-2025-01-01/"
)
FIXTURE_VIEWS = 5581


def era_of(published: datetime) -> str:
    if published.year <= 2021:
        return "A"
    return "B" if published.year <= 2023 else "C"


def _sentence(rng: random.Random) -> str:
    return f"{rng.choice(SUBJECTS)}{rng.choice(ACTIONS)}{rng.choice(OBJECTS)}，{rng.choice(CLAUSES)}。"


def _url(rng: random.Random, sid: int, n: int) -> str:
    host = rng.choice(("www.theregister.com", "arstechnica.com", "www.nature.com", "lwn.net", "example.org"))
    query = f"?id={sid}&ref=solidot" if rng.random() < 0.2 else ""
    return f"https://{host}/{2006 + sid % 20}/story-{sid}-{n}{query}"


def _title(rng: random.Random) -> tuple[str, str]:
    """(title, markup): markup with entities and stray whitespace around or inside."""
    words = [rng.choice(SUBJECTS), rng.choice(ACTIONS), rng.choice(OBJECTS)]
    if rng.random() < 0.25:
        words.insert(2, rng.choice(TITLE_SPICES) + " ")
    title = "".join(words)
    markup = title.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")
    if rng.random() < 0.3:
        markup = f"\n  {markup}  \n"
    if rng.random() < 0.1:
        markup = markup.replace(" ", " \n ", 1)
    return title, markup


def _paragraphs(rng: random.Random, sid: int, era: str) -> list[list[Inline]]:
    paragraphs: list[list[Inline]] = []
    for number in range(rng.randint(1, 3)):
        line: list[Inline] = [_sentence(rng) for _ in range(rng.randint(1, 3))]
        if era == "A" and rng.random() < 0.7:
            # up to 2021 the sources were inline links in the text
            line.insert(
                rng.randint(0, len(line)), Link(rng.choice(("报道", "公告", "论文")), _url(rng, sid, number))
            )
        paragraphs.append(line)
    return paragraphs


def _short(text: str, length: int, prefix: str = "") -> str:
    """The first ``length`` characters of ``text``, whitespace-normalized, after ``prefix``."""
    return prefix + " ".join(text[:length].split())


def _comments(rng: random.Random, sid: int, published: datetime, extra: int) -> list[CommentRecord]:
    comments: list[CommentRecord] = []
    count = rng.choice((0, 0, 0, 1, 2, 3, 5)) + extra
    moment = published
    for number in range(count):
        parent = rng.choice(comments).cid if comments and rng.random() < 0.4 else None
        author, uid = rng.choice(COMMENTERS)
        moment += timedelta(minutes=rng.randint(3, 300))
        lines = tuple(_sentence(rng) for _ in range(rng.choice((1, 1, 2))))
        title = _short(lines[0], 8, "Re:" if parent else "")
        comments.append(
            CommentRecord(sid * 16 + number, parent, author, uid, title, rng.randint(-1, 5), moment, lines)
        )
    return comments


#: Hostile values (``--faults hostile=N``): a number no 64-bit integer holds, and nesting depths.
HUGE_NUMBER = 10**20
DEEP_BODY = 1200  # <div>s around the body: today's crawler parses it (iteratively)
DEEP_THREAD = 1000  # replies to replies: 2,000+ elements deep, within what libxml2 reads (2,048)
TOO_DEEP_THREAD = 1200  # 2,400+ elements: libxml2 stops reading the page there
_THREAD_CID_BASE = 10**9  # the deep threads' cids, clear of every other story's


def make_hostile(story: StoryRecord, kind: str) -> StoryRecord:
    """A copy of ``story`` carrying one hostile value (``kind``: see ``faults.HOSTILE_KINDS``)."""
    if kind == "huge_views":
        return replace(story, views=HUGE_NUMBER)
    if kind == "huge_cid":
        comments = story.comments or _comments(
            random.Random(f"hostile:{story.sid}"), story.sid, story.published_at, 1
        )
        first = comments[0]
        moved = [replace(first, cid=HUGE_NUMBER)]
        moved += [
            replace(c, parent_cid=HUGE_NUMBER) if c.parent_cid == first.cid else c for c in comments[1:]
        ]
        return replace(story, comments=moved)
    if kind == "deep_body":
        return replace(story, body_depth=DEEP_BODY)
    if kind in ("deep_thread", "too_deep"):
        depth = DEEP_THREAD if kind == "deep_thread" else TOO_DEEP_THREAD
        return replace(story, comments=_thread_chain(story, depth))
    raise ValueError(f"unknown hostile kind {kind!r}")


def _thread_chain(story: StoryRecord, depth: int) -> list[CommentRecord]:
    """``depth`` comments, each replying to the one before: a thread ``depth`` levels deep."""
    rng = random.Random(f"thread:{story.sid}")
    comments: list[CommentRecord] = []
    moment = story.published_at
    for number in range(depth):
        author, uid = rng.choice(COMMENTERS)
        moment += timedelta(minutes=rng.randint(1, 30))
        line = _sentence(rng)
        parent = comments[-1].cid if comments else None
        cid = _THREAD_CID_BASE + story.sid * 2000 + number
        title = _short(line, 8, "Re:" if parent else "")
        comments.append(CommentRecord(cid, parent, author, uid, title, rng.randint(-1, 5), moment, (line,)))
    return comments


#: How likely a story is to change (more views, a new comment) during one day of its life:
#: ``CHANGE_YOUNG × ½^(age / CHANGE_HALF_LIFE) + CHANGE_FLOOR``, age in days, and just
#: ``CHANGE_FLOOR`` from ``CHANGE_OLD_AGE`` on. Young stories change often, old ones almost never:
#: about 10 % of a 300-story window (33 days) changes in a day, 0.06 % of the whole history, and
#: most changes are of stories less than a month old.
CHANGE_YOUNG = 0.35
CHANGE_HALF_LIFE = 7.0
CHANGE_FLOOR = 0.0002
CHANGE_OLD_AGE = 180

_MASK = (1 << 64) - 1


def change_probability(age_days: float) -> float:
    """The chance that a story ``age_days`` old changes during one day (see :data:`CHANGE_YOUNG`)."""
    if age_days >= CHANGE_OLD_AGE:
        return CHANGE_FLOOR
    return CHANGE_YOUNG * 0.5 ** (max(0.0, age_days) / CHANGE_HALF_LIFE) + CHANGE_FLOOR


def _unit(sid: int, number: int, salt: int) -> float:
    """A uniform number in [0, 1) fixed by its arguments (splitmix64: cheap enough to draw for every
    day of every young story of a month-long simulation)."""
    x = (sid * 0x9E3779B97F4A7C15 + number * 0xD1B54A32D192ED03 + salt * 0xBF58476D1CE4E5B9) & _MASK
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _MASK
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _MASK
    return (x ^ (x >> 31)) / 2.0**64


def change_days(sid: int, first: date, last: date, published: date | None = None) -> list[date]:
    """The Beijing days from ``first`` to ``last`` on which story ``sid`` changes (never before it
    is published; never sid 80222, the real page we hold).

    A young story gets one draw a day; from ``CHANGE_OLD_AGE`` on the days between two changes
    are drawn instead (geometric, at ``CHANGE_FLOOR``), so an old story costs a draw per change,
    not per day, and 85k stories over a month are quick to enumerate. ``published``: the sid's
    day, when the caller knows it (:func:`timeline.days_of`).
    """
    if sid == FIXTURE_SID:
        return []
    published = published or timeline.day_of(sid)
    old_from = published + timedelta(days=CHANGE_OLD_AGE)
    days = []
    day = max(first, published)
    while day <= last and day < old_from:
        age = (day - published).days
        if _unit(sid, day.toordinal(), 1) < change_probability(age):
            days.append(day)
        day += timedelta(days=1)
    if last >= old_from:
        day, number = old_from - timedelta(days=1), 0
        while day <= last:
            number += 1
            failures = math.floor(math.log(1.0 - _unit(sid, number, 2)) / math.log(1.0 - CHANGE_FLOOR))
            day += timedelta(days=1 + min(failures, 1_000_000))
            if first <= day <= last:
                days.append(day)
    return days


def changes_on(sid: int, day: date) -> bool:
    """Whether story ``sid`` changes on Beijing ``day`` (see :func:`change_days`)."""
    return bool(change_days(sid, day, day))


def change_moment(sid: int, day: date, published: datetime | None = None) -> datetime:
    """When on ``day`` a change of :func:`change_days` happens (after the story's publication,
    ``published`` when the caller knows it)."""
    midnight = datetime(day.year, day.month, day.day, tzinfo=BEIJING)
    start = max(midnight, published or timeline.published_at(sid))
    return start + (midnight + timedelta(days=1) - start) * _unit(sid, day.toordinal(), 3)


def visit_day(today: date, revision: int) -> date:
    """The day a visit at ``revision`` sees: ``revision`` days after the replica's ``today``."""
    return today + timedelta(days=revision)


def revised(sid: int, revision: int, today: date) -> bool:
    """Whether ``sid`` changed (more views, a new comment) at ``revision`` (0: never) of a replica
    whose newest story is of ``today``: whether it changed on that revision's visit day."""
    return revision > 0 and changes_on(sid, visit_day(today, revision))


def generate(sid: int, seed: int = 1, revision: int = 0, today: date | None = None) -> StoryRecord:
    """The story with this sid, as the replica serves it at ``revision`` (``today``: the replica's
    newest day, which revisions count from; default the sid's own day)."""
    if sid == FIXTURE_SID:
        return _fixture()
    rng = random.Random(f"story:{seed}:{sid}")
    published = timeline.published_at(sid)
    era = era_of(published)
    title, title_markup = _title(rng)
    author, uid = rng.choice(EDITORS)
    topics = rng.sample(TOPICS, rng.choice((1, 1, 2)))
    department = rng.choice(DEPARTMENTS) if rng.random() < 0.9 else None
    old_style = published.year <= 2015 or rng.random() < 0.3
    department_markup = None if department is None else f"来自{department}{'部门' if old_style else ''}"
    category = rng.choice(list(CATEGORIES)) if rng.random() < 0.85 else None
    story = StoryRecord(
        sid=sid,
        era=era,
        title=title,
        title_markup=title_markup,
        author=author,
        author_uid=uid,
        published_at=published,
        topics=topics,
        department=department,
        department_markup=department_markup,
        category=category,
        paragraphs=_paragraphs(rng, sid, era),
        views=rng.randint(200, 40000),
    )
    if era == "A":
        if published.year == 2021:
            story.donation_image = DONATION_IMAGE.format(tag=f"{sid:x}")
        if rng.random() < 0.05:
            story.inline_script = f"document.write('ad-{sid}');"
    else:
        count = rng.randint(1, 2)
        story.references = [
            Reference(_url(rng, sid, n), rng.choice((None, "原文链接")) if era == "C" else None)
            for n in range(count)
        ]
    extra = 0
    for number in range(1, revision + 1):
        if revised(sid, number, today or timeline.day_of(sid)):
            story.views += 31 * number
            extra += 1
    story.comments = _comments(rng, sid, published, extra)
    return story


def _fixture() -> StoryRecord:
    return StoryRecord(
        sid=FIXTURE_SID,
        era="C",
        title=FIXTURE_TITLE,
        title_markup=FIXTURE_TITLE,
        author="Wilson",
        author_uid=42865,
        published_at=timeline.published_at(FIXTURE_SID),
        topics=[Topic(151, "人工智能", "topicAI.png")],
        department="月海沉船",
        department_markup="来自月海沉船",
        category="technology",
        paragraphs=[[FIXTURE_BODY]],
        references=[Reference(FIXTURE_REFERENCE)],
        views=FIXTURE_VIEWS,
    )
