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


#: A DNS host name: dot-separated labels of letters, digits and hyphens.
_LABEL_RE = re.compile(r"(?!-)[a-z0-9-]{1,63}(?<!-)", re.ASCII)


@dataclass(frozen=True)
class SiteMap:
    """URLs of one Solidot deployment (the real site or a replica).

    The base URL's host is the site's main host; category hosts are subdomains
    of the site's domain: the host without its ``www`` label
    (``www.solidot.org`` → ``linux.solidot.org``), or the host itself when it
    has none (``solidot.org`` → ``linux.solidot.org``). A host of three or more
    labels whose first is not ``www`` or a category (``solidot.com.cn``) is
    taken as the domain itself too.

    >>> site = SiteMap.from_base_url("http://www.solidot.test:8080")
    >>> site.category_home("linux")
    'http://linux.solidot.test:8080/'
    >>> site.story_url(80222)
    'http://www.solidot.test:8080/story?sid=80222'
    >>> SiteMap.from_base_url("https://solidot.org").category_home("apple")
    'https://apple.solidot.org/'
    """

    scheme: str
    domain: str  # the site's domain, with port: "solidot.org", "solidot.test:8080"
    www_label: str = "www"  # the main host's label under the domain; "" when it is the domain itself

    @classmethod
    def from_base_url(cls, base_url: str) -> SiteMap:
        text = str(base_url or "").strip()
        parts = urlsplit(text.rstrip("/"))
        if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
            raise ValueError(
                f"SOLIDOT_BASE_URL must be an http(s) URL like https://www.solidot.org, got {text!r}"
            )
        try:
            port = parts.port
        except ValueError:
            raise ValueError(f"SOLIDOT_BASE_URL has a bad port, got {text!r}") from None
        host = parts.hostname.lower().rstrip(".")
        labels = host.split(".")
        if len(labels) < 2 or not all(_LABEL_RE.fullmatch(label) for label in labels) or labels[-1].isdigit():
            raise ValueError(
                "SOLIDOT_BASE_URL needs a host name with a dot-separated domain (like www.solidot.org; "
                f"category hosts are subdomains of it), got {text!r}"
            )
        suffix = f":{port}" if port is not None else ""
        if len(labels) >= 3 and (labels[0] == "www" or labels[0] in CATEGORIES):
            return cls(scheme=parts.scheme.lower(), domain=".".join(labels[1:]) + suffix, www_label=labels[0])
        return cls(scheme=parts.scheme.lower(), domain=host + suffix, www_label="")

    @property
    def domain_name(self) -> str:
        """The domain without port: ``solidot.test``."""
        return self.domain.rsplit(":", 1)[0]

    def allowed_domains(self) -> list[str]:
        """The spider's ``allowed_domains``: the domain covers every host this map derives."""
        return [self.domain_name]

    def _netloc(self, label: str) -> str:
        return f"{label}.{self.domain}" if label else self.domain

    @property
    def base_url(self) -> str:
        return f"{self.scheme}://{self._netloc(self.www_label)}"

    def host_url(self, label: str) -> str:
        return f"{self.scheme}://{self._netloc(label)}/"

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
        """The first host label of a URL on this site ('linux', 'www'; '' for the bare domain), else None."""
        netloc = urlsplit(url).netloc.rsplit("@", 1)[-1].lower()
        if netloc == self.domain:
            return ""
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
