"""The fleet's operations for the ``workers`` command: survey every node first, then act.

Every operation starts with a survey of every node (status, projects, egg
versions, jobs); if any node is unreachable, refuses the credentials, or lacks
the project, it stops there with one message naming each such node, and nothing
has been changed anywhere. Only then are jobs scheduled or cancelled.

Design notes: docs/framework-design.md#fleet-fleet.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import requests

from scrapy_sharedcrawl.fleet.api import Job, ScrapydApi, ScrapydError
from scrapy_sharedcrawl.fleet.nodes import Node
from scrapy_sharedcrawl.fleet.plan import NodeLoad, place, to_cancel
from scrapy_sharedcrawl.reading import printable
from scrapy_sharedcrawl.redact import redact_uri

#: The setting that tells a worker job which node of the fleet it runs on.
NODE_SETTING = "WORKER_NODE_NAME"
ACTIVE = ("pending", "running")


@dataclass
class NodeState:
    """What one node reported in a survey."""

    api: ScrapydApi
    busy: int  # every project's pending and running jobs
    versions: list[str]
    jobs: list[Job] = field(default_factory=list)  # the crawl spider's jobs, every state

    @property
    def node(self) -> Node:
        return self.api.node

    @property
    def active(self) -> list[Job]:
        return [job for job in self.jobs if job.state in ACTIVE]

    @property
    def load(self) -> NodeLoad:
        return NodeLoad(self.node.name, self.node.slots, self.busy, len(self.active))


@dataclass(frozen=True)
class Scheduled:
    node: str
    job: str
    version: str


class Fleet:
    """The crawl's worker jobs over ``nodes``."""

    def __init__(self, nodes: Sequence[Node], spider: str) -> None:
        if not nodes:
            raise ValueError("no scrapyd nodes given")
        self.spider = spider
        session = requests.Session()  # one connection pool for every node
        self.apis = [ScrapydApi(node, session) for node in nodes]

    def survey(self) -> list[NodeState]:
        """Every node's state; raises one :class:`ScrapydError` naming every node that failed."""
        states, failures = [], []
        for api in self.apis:
            try:
                states.append(self._survey(api))
            except ScrapydError as error:
                failures.append(str(error))
        if failures:
            raise ScrapydError("; ".join(failures) + " — nothing changed")
        return states

    def _survey(self, api: ScrapydApi) -> NodeState:
        project = api.node.project
        status = api.daemon_status()
        if project not in api.projects():
            raise ScrapydError(
                f"{api.label} lacks the project {project}: deploy it with `scrapyd-deploy {api.node.name}`"
            )
        versions = api.versions(project)
        jobs = [job for job in api.jobs(project) if job.spider == self.spider]
        return NodeState(api, status["running"] + status["pending"], versions, jobs)

    @staticmethod
    def jobs(states: Sequence[NodeState]) -> list[Job]:
        """The crawl's pending and running worker jobs on every node of a survey."""
        return [job for state in states for job in state.active]

    def up(
        self, count: int, settings: Mapping[str, str] | None = None, args: Mapping[str, str] | None = None
    ) -> list[Scheduled]:
        """Bring the crawl to ``count`` pending or running worker jobs. → the jobs scheduled."""
        settings, args = dict(settings or {}), dict(args or {})
        check_no_credentials({**settings, **args})
        if NODE_SETTING in settings:
            raise ValueError(f"{NODE_SETTING} is set per job by `workers up`")
        states = self.survey()
        missing = count - len(self.jobs(states))
        if missing <= 0:
            return []
        by_name = {state.node.name: state for state in states}
        scheduled: list[Scheduled] = []
        for name in place([state.load for state in states], missing):
            state = by_name[name]
            version = state.versions[-1]  # what scrapyd itself would run: its newest
            try:
                job = state.api.schedule(
                    state.node.project, self.spider, version, {**settings, NODE_SETTING: name}, args
                )
            except ScrapydError as error:
                done = printable(", ".join(f"{s.job} on {s.node}" for s in scheduled)) or "none"
                raise ScrapydError(f"{error} — scheduled before that: {done}") from None
            scheduled.append(Scheduled(name, job, version))
        return scheduled

    def down(self, count: int) -> list[Job]:
        """Bring the crawl down to ``count`` worker jobs: cancel the others gracefully. → those cancelled."""
        if count < 0:
            raise ValueError("workers down takes a number of workers to keep, 0 or more")
        states = self.survey()
        jobs = self.jobs(states)
        return self._cancel(states, to_cancel(jobs, max(0, len(jobs) - count)))

    def drain(self, node_name: str) -> list[Job]:
        """Cancel every worker job on one node (pending ones are removed). → those cancelled."""
        states = self.survey()
        chosen = [state for state in states if state.node.name == node_name]
        if not chosen:
            names = ", ".join(state.node.name for state in states)
            raise ValueError(f"no node named {node_name!r} in the fleet ({names})")
        return self._cancel(states, chosen[0].active)

    def _cancel(self, states: Sequence[NodeState], jobs: Sequence[Job]) -> list[Job]:
        apis = {state.node.name: state.api for state in states}
        for job in jobs:
            api = apis[job.node]
            api.cancel(api.node.project, job.id)
        return list(jobs)


#: Words of a setting's or argument's name (or of a key inside its JSON value) that say it holds a
#: credential: ``REDIS_PARAMS={"password": …}``, ``DASHBOARD_TOKEN``, ``AWS_SECRET_ACCESS_KEY``,
#: a spider's ``http_pass`` (Scrapy's HttpAuthMiddleware).
_SECRET_WORDS = frozenset(
    {"PASSWORD", "PASSWD", "PASS", "PWD", "PASSPHRASE", "TOKEN", "SECRET", "CREDENTIAL", "CREDENTIALS"}
    | {"APIKEY"}
)
#: Words that make a following ``KEY`` a credential (``API_KEY``, ``PRIVATE_KEY``); a bare ``…_KEY``
#: names a Redis key (``SCHEDULER_QUEUE_KEY``, ``REDIS_START_URLS_KEY``) and is fine.
_KEY_QUALIFIERS = frozenset({"API", "ACCESS", "PRIVATE", "SECRET", "SIGNING", "AUTH", "ENCRYPTION", "MASTER"})
#: Deepest JSON value searched for credential names.
_MAX_DEPTH = 20


def check_no_credentials(values: Mapping[str, str]) -> None:
    """Refuse settings or arguments that carry credentials: scrapyd logs every job's command line and
    lists pending jobs' settings to anyone with API access; credentials belong in the node's environment.

    Refused by value (a URI with a password) and by name: a name, or a key inside a JSON value,
    that says password, token, secret, credential or an API/access/private key.
    """
    for name, value in values.items():
        if redact_uri(value) != value:
            raise ValueError(
                f"{name} holds credentials: scrapyd would log them with the job's arguments; set it in the "
                "node's environment (scrapyd's EnvironmentFile) instead"
            )
        secret = _secret_name(name) or _secret_key_inside(value)
        if secret:
            raise ValueError(
                f"{name} names a credential ({secret!r}): scrapyd would log it with the job's arguments; set "
                "it in the node's environment (scrapyd's EnvironmentFile) instead"
            )


def _secret_name(name: str) -> str | None:
    """``name`` when its words say it holds a credential (see :data:`_SECRET_WORDS`), else None."""
    words = [
        word for word in re.split(r"[^A-Z0-9]+", re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", name).upper()) if word
    ]
    for before, word in zip(["", *words], words, strict=False):
        if word in _SECRET_WORDS or (word == "KEY" and before in _KEY_QUALIFIERS):
            return name
    return None


def _secret_key_inside(value: str) -> str | None:
    """The first key of ``value`` read as JSON (a dict setting: ``REDIS_PARAMS``) that names a credential."""
    try:
        parsed = json.loads(value)
    except (ValueError, RecursionError):
        return None
    pending: list[tuple[Any, int]] = [(parsed, 0)]
    while pending:
        item, depth = pending.pop()
        if depth > _MAX_DEPTH:
            continue
        if isinstance(item, dict):
            for key, inner in item.items():
                if _secret_name(str(key)):
                    return str(key)
                pending.append((inner, depth + 1))
        elif isinstance(item, list):
            pending.extend((inner, depth + 1) for inner in item)
    return None
