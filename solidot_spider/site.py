"""Where the site lives: base URL, category hosts and canonical story URLs.

Everything that knows Solidot's URL scheme is here, so pointing the crawler at
the offline replica (``SOLIDOT_BASE_URL=http://www.solidot.test:8080``) changes
one setting and nothing else.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from urllib.parse import parse_qs, urlsplit

#: Category subdomains in the 2025–2026 navigation, with their menu labels.
CATEGORIES: dict[str, str] = {
    "linux": "Linux",
    "science": "科学",
    "technology": "科技",
    "mobile": "移动",
    "apple": "苹果",
    "hardware": "硬件",
    "software": "软件",
    "security": "安全",
    "games": "游戏",
    "books": "书籍",
    "idle": "idle",
    "cloud": "云计算",
    "story": "高飞的电子替身",
}

_SID_RE = re.compile(r"^\d{1,9}$")


@dataclass(frozen=True)
class SiteMap:
    """URLs of one Solidot deployment (the real site or a replica).

    >>> site = SiteMap.from_base_url("http://www.solidot.test:8080")
    >>> site.category_home("linux")
    'http://linux.solidot.test:8080/'
    >>> site.story_url(80222)
    'http://www.solidot.test:8080/story?sid=80222'
    """

    scheme: str
    domain: str  # the registrable part under www, with port: "solidot.org"
    www_label: str = "www"

    @classmethod
    def from_base_url(cls, base_url: str) -> SiteMap:
        parts = urlsplit(base_url.strip().rstrip("/"))
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"SOLIDOT_BASE_URL must be an http(s) URL, got {base_url!r}")
        netloc = parts.netloc.rsplit("@", 1)[-1].lower()
        label, _, rest = netloc.partition(".")
        if not rest:
            raise ValueError(f"SOLIDOT_BASE_URL needs a host like www.<domain>, got {base_url!r}")
        return cls(scheme=parts.scheme, domain=rest, www_label=label)

    @property
    def base_url(self) -> str:
        return f"{self.scheme}://{self.www_label}.{self.domain}"

    def host_url(self, label: str) -> str:
        return f"{self.scheme}://{label}.{self.domain}/"

    def home(self) -> str:
        return self.host_url(self.www_label)

    def category_home(self, category: str) -> str:
        return self.host_url(category)

    def rss(self) -> str:
        return f"{self.base_url}/index.rss"

    def story_url(self, sid: int) -> str:
        return f"{self.base_url}/story?sid={sid}"

    def day_archive(self, day: date) -> str:
        return f"{self.base_url}/?issue={day:%Y%m%d}"

    def host_label(self, url: str) -> str | None:
        """The first host label of a URL on this site ('linux', 'www'), else None."""
        netloc = urlsplit(url).netloc.rsplit("@", 1)[-1].lower()
        label, _, rest = netloc.partition(".")
        return label if rest == self.domain else None

    def category_of_url(self, url: str) -> str | None:
        """The category a URL's host stands for, or None for www and foreign hosts."""
        label = self.host_label(url)
        return label if label in CATEGORIES else None


def story_sid(url: str) -> int | None:
    """The sid of a story URL on any host (``/story?sid=N``), else None.

    >>> story_sid("//linux.solidot.org/story?sid=42")
    42
    """
    parts = urlsplit(url)
    if parts.path.rstrip("/") != "/story":
        return None
    values = parse_qs(parts.query).get("sid", [])
    if len(values) != 1 or not _SID_RE.match(values[0]):
        return None
    return int(values[0])
