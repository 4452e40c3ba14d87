"""Which scrapyd nodes make up the fleet: scrapy.cfg's ``[deploy:NODE]`` targets, or a list of URLs.

The config is the one ``scrapyd-deploy`` reads (the same files, the same
``${NAME}`` expansion of environment variables), so a node is declared once for
deploying and for scaling. Each target may carry ``slots``: how many jobs the
node runs at once (its scrapyd.conf ``max_proc``), which scrapyd's API doesn't
tell. Credentials come from the environment only (``SCRAPYD_USERNAME`` and
``SCRAPYD_PASSWORD``, or ``${…}`` references in the target), never from
arguments that would show in a shell history or a process list.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from configparser import ConfigParser
from configparser import Error as ConfigError
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from scrapy.utils.conf import get_sources

#: scrapyd.conf's ``max_proc`` in deploy/scrapyd/: slots of a node that names none.
DEFAULT_SLOTS = 4
USERNAME_ENV, PASSWORD_ENV = "SCRAPYD_USERNAME", "SCRAPYD_PASSWORD"
_UNEXPANDED = re.compile(r"\$\{?\w+\}?")


@dataclass(frozen=True)
class Node:
    """One scrapyd node: where it answers, what runs there, how to log in."""

    name: str
    url: str  # http(s)://host:port, no credentials, no trailing slash
    project: str = ""  # the scrapyd project its workers run (scrapy.cfg's ``project``)
    slots: int = DEFAULT_SLOTS
    username: str = field(default="", repr=False)
    password: str = field(default="", repr=False)

    @property
    def auth(self) -> tuple[str, str] | None:
        return (self.username, self.password) if self.username else None


def node_url(url: str) -> str:
    """``url`` checked and normalised: http(s), a host, no credentials (they belong in the environment)."""
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"not a scrapyd URL: {url!r} (expected http://HOST:PORT)")
    if parts.username or parts.password:
        raise ValueError(
            f"credentials in a scrapyd URL ({parts.hostname}): set {USERNAME_ENV} and {PASSWORD_ENV} instead"
        )
    return urlunsplit((parts.scheme, parts.netloc, parts.path.rstrip("/"), "", ""))


def nodes_from_urls(
    urls: str, project: str = "", slots: int = DEFAULT_SLOTS, env: Mapping[str, str] = os.environ
) -> list[Node]:
    """``--scrapyd URL[,URL…]``: one node per URL, named ``host:port``, credentials from ``env``."""
    nodes = []
    for raw in urls.split(","):
        if not raw.strip():
            continue
        url = node_url(raw)
        nodes.append(
            Node(
                name=urlsplit(url).netloc,
                url=url,
                project=project,
                slots=slots,
                username=env.get(USERNAME_ENV, ""),
                password=env.get(PASSWORD_ENV, ""),
            )
        )
    return _unique(nodes)


def deploy_config(path: Path | None = None) -> ConfigParser:
    """``path``, or the scrapy.cfg files scrapyd-deploy reads (the closest first), parsed; ValueError
    when it can't be read."""
    parser = ConfigParser()
    try:
        read = parser.read([path] if path is not None else get_sources(use_closest=True))
    except ConfigError as error:
        raise ValueError(f"cannot read the scrapyd targets: {error}") from None
    if path is not None and not read:
        raise ValueError(f"no such config file: {path}")
    return parser


def nodes_from_config(
    path: Path | None = None,
    targets: Sequence[str] = (),
    env: Mapping[str, str] = os.environ,
    project: str = "",
) -> list[Node]:
    """The deploy targets of ``path`` (default: the scrapy.cfg files scrapyd-deploy reads), or only
    ``targets``. The plain ``[deploy]`` section is the target ``default`` when it has a ``url``; a
    target without a ``project`` runs ``project``."""
    parser = deploy_config(path)
    base = dict(parser.items("deploy")) if parser.has_section("deploy") else {}
    found: dict[str, dict[str, str]] = {"default": base} if "url" in base else {}
    for section in parser.sections():
        if section.startswith("deploy:"):
            found[section.removeprefix("deploy:")] = {**base, **dict(parser.items(section))}
    if targets:
        missing = [name for name in targets if name not in found]
        if missing:
            raise ValueError(f"no [deploy:{missing[0]}] target; known: {', '.join(found) or 'none'}")
        found = {name: found[name] for name in targets}
    if not found:
        raise ValueError("no scrapyd nodes: add [deploy:NODE] sections to scrapy.cfg, or give --scrapyd URL")
    return _unique([_target_node(name, values, env, project) for name, values in found.items()])


def _target_node(name: str, values: Mapping[str, str], env: Mapping[str, str], project: str) -> Node:
    def value(key: str, default: str = "") -> str:
        expanded = _expand(values.get(key, default), env)
        return "" if _UNEXPANDED.search(expanded) else expanded.strip()  # ${NAME} unset: no value

    try:
        slots = int(value("slots", str(DEFAULT_SLOTS)) or DEFAULT_SLOTS)
    except ValueError:
        raise ValueError(
            f"target {name}: slots must be a whole number, got {values.get('slots')!r}"
        ) from None
    if slots < 1:
        raise ValueError(f"target {name}: slots must be at least 1")
    return Node(
        name=name,
        url=node_url(value("url")),
        project=value("project") or project,
        slots=slots,
        username=value("username") or env.get(USERNAME_ENV, ""),
        password=value("password") or env.get(PASSWORD_ENV, ""),
    )


def _expand(text: str, env: Mapping[str, str]) -> str:
    """``${NAME}`` and ``$NAME`` from ``env``, as scrapyd-client expands scrapy.cfg (unknown ones stay)."""
    return re.sub(
        r"\$(?:\{(\w+)\}|(\w+))",
        lambda match: env.get(match[1] or match[2], match[0]),
        text,
    )


def _unique(nodes: list[Node]) -> list[Node]:
    names = [node.name for node in nodes]
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise ValueError(f"node {duplicates[0]} is listed twice")
    return nodes
