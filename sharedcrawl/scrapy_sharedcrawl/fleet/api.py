"""One scrapyd node's HTTP API (scrapyd 1.6), with the errors an operator can act on.

scrapyd-client's ``ScrapydClient`` sends requests without a timeout (a node
that stopped answering hangs the caller for good) and turns a 401 into a
"malformed response"; so this is a small client of our own on ``requests``:
every call has a timeout, every failure is a :class:`ScrapydError` that names
the node and says what to do, and every answer is checked before it is used
(a node is a network peer, not trusted code).
"""

from __future__ import annotations

import ipaddress
import json
import logging
import queue
import re
import threading
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import requests

from scrapy_sharedcrawl.fleet.nodes import PASSWORD_ENV, USERNAME_ENV, Node
from scrapy_sharedcrawl.reading import printable

logger = logging.getLogger(__name__)

#: Seconds to connect to a node, and to wait for its answer (schedule.json lists the egg's spiders
#: in a subprocess: a few seconds on a busy node).
CONNECT_TIMEOUT = 5.0
READ_TIMEOUT = 60.0
#: Seconds one call may take in all: a node that drips its answer a byte at a time, each within
#: the read timeout, is given up after this long.
CALL_DEADLINE = 90.0
#: Most bytes of one answer (listjobs.json of the jobs scrapyd keeps is far smaller).
MAX_ANSWER = 8 * 1024 * 1024
USER_AGENT = "scrapy-sharedcrawl-workers"
_ERRNO_TEXT = re.compile(r"\[Errno -?\d+\] ([^'\"\)\]]+)")


class ScrapydError(Exception):
    """A node could not do what was asked; the message names the node and the way out."""


class NodeUnreachable(ScrapydError):
    pass


class CredentialsRefused(ScrapydError):
    pass


@dataclass(frozen=True)
class Job:
    """One job of a node, as listjobs.json reports it."""

    node: str
    id: str
    state: str  # pending, running or finished
    spider: str
    pid: int | None = None
    start_time: str | None = None
    end_time: str | None = None
    version: str | None = None  # pending jobs only: scrapyd doesn't report a running job's egg


class ScrapydApi:
    """The calls the ``workers`` command makes to one node."""

    def __init__(self, node: Node, session: requests.Session | None = None) -> None:
        self.node = node
        self.session = session or requests.Session()
        self.session.headers["User-Agent"] = USER_AGENT
        self.deadline = CALL_DEADLINE
        self.max_answer = MAX_ANSWER
        if node.auth is not None and clear_text_beyond_loopback(node.url):
            logger.warning(
                "%s: the credentials (%s, %s) go over plain http to a host beyond this machine, readable "
                "on the way; use https (a TLS proxy in front of scrapyd) or a private network",
                self.label,
                USERNAME_ENV,
                PASSWORD_ENV,
            )

    @property
    def label(self) -> str:
        return f"node {self.node.name} ({self.node.url})"

    def daemon_status(self) -> dict[str, Any]:
        """``{running, pending, finished, node_name}``: every project's jobs on this node."""
        answer = self._call("GET", "daemonstatus")
        return {
            "node_name": str(answer.get("node_name", "")),
            **{key: _count(answer.get(key), key, self.label) for key in ("running", "pending", "finished")},
        }

    def projects(self) -> list[str]:
        return _strings(self._call("GET", "listprojects").get("projects"), "projects", self.label)

    def versions(self, project: str) -> list[str]:
        """The project's egg versions, oldest first (the last is what a job without ``_version`` runs)."""
        answer = self._call("GET", "listversions", params={"project": project})
        return _strings(answer.get("versions"), "versions", self.label)

    def jobs(self, project: str) -> list[Job]:
        answer = self._call("GET", "listjobs", params={"project": project})
        jobs = []
        for state in ("pending", "running", "finished"):
            entries = answer.get(state, [])
            if not isinstance(entries, list):
                raise ScrapydError(f"{self.label} answered listjobs.json without a {state} list")
            for entry in entries:
                if not isinstance(entry, dict) or not isinstance(entry.get("id"), str):
                    raise ScrapydError(f"{self.label} answered listjobs.json with a job that has no id")
                pid = entry.get("pid")
                jobs.append(
                    Job(
                        node=self.node.name,
                        id=entry["id"],
                        state=state,
                        spider=str(entry.get("spider", "")),
                        pid=pid if isinstance(pid, int) else None,
                        start_time=_optional_text(entry.get("start_time")),
                        end_time=_optional_text(entry.get("end_time")),
                        version=_optional_text(entry.get("version")),
                    )
                )
        return jobs

    def schedule(
        self, project: str, spider: str, version: str | None, settings: dict[str, str], args: dict[str, str]
    ) -> str:
        """Queue a job; scrapyd starts it at its next poll. → the job id."""
        data: list[tuple[str, str]] = [("project", project), ("spider", spider)]
        if version:
            data.append(("_version", version))
        data += [("setting", f"{name}={value}") for name, value in settings.items()]
        data += list(args.items())
        job = self._call("POST", "schedule", data=data).get("jobid")
        if not isinstance(job, str) or not job:
            raise ScrapydError(f"{self.label} scheduled a job but gave no job id")
        return job

    def cancel(self, project: str, job: str, signal: str = "TERM") -> str | None:
        """Remove a pending job, or send ``signal`` to a running one. → its state before, or None."""
        answer = self._call("POST", "cancel", data=[("project", project), ("job", job), ("signal", signal)])
        return _optional_text(answer.get("prevstate"))

    def _call(self, method: str, endpoint: str, **kwargs: Any) -> dict[str, Any]:
        status, body = self._fetch(method, endpoint, **kwargs)
        if status == 401:
            who = "without credentials" if self.node.auth is None else f"for user {self.node.username!r}"
            raise CredentialsRefused(
                f"{self.label} refused the credentials {who} (HTTP 401): set {USERNAME_ENV} and "
                f"{PASSWORD_ENV} to the node's"
            )
        if status != 200:
            raise ScrapydError(f"{self.label} answered {endpoint}.json with HTTP {status}")
        try:
            answer = json.loads(body)
        except (ValueError, RecursionError):
            raise ScrapydError(
                f"{self.label} answered {endpoint}.json with something that is not JSON"
            ) from None
        if not isinstance(answer, dict):
            raise ScrapydError(f"{self.label} answered {endpoint}.json with something that is not an object")
        if answer.get("status") != "ok":
            message = printable(str(answer.get("message", "no message"))[:300].strip())
            raise ScrapydError(f"{self.label} refused {endpoint}.json: {message}")
        return answer

    def _fetch(self, method: str, endpoint: str, **kwargs: Any) -> tuple[int, bytes]:
        """``(status, body)`` of one call, within :attr:`deadline` seconds in all and :attr:`max_answer`
        bytes. The call runs in a thread the caller stops waiting for at the deadline: a node that
        drips its answer can't hold the command (the thread ends at the node's next read timeout)."""
        outcome: queue.Queue[tuple[int, bytes] | BaseException] = queue.Queue(maxsize=1)

        def fetch() -> None:
            try:
                outcome.put(self._request(method, endpoint, **kwargs))
            except BaseException as error:  # handed to the caller, who raises it
                outcome.put(error)

        threading.Thread(target=fetch, name=f"scrapyd {self.node.name}", daemon=True).start()
        try:
            result = outcome.get(timeout=self.deadline)
        except queue.Empty:
            raise NodeUnreachable(
                f"{self.label} did not answer {endpoint}.json within {self.deadline:g} s"
            ) from None
        if isinstance(result, requests.Timeout):
            raise NodeUnreachable(f"{self.label} did not answer {endpoint}.json in time") from None
        if isinstance(result, requests.RequestException):
            raise NodeUnreachable(f"{self.label} is unreachable ({_reason(result)})") from None
        if isinstance(result, BaseException):
            raise result
        return result

    def _request(self, method: str, endpoint: str, **kwargs: Any) -> tuple[int, bytes]:
        url = f"{self.node.url}/{endpoint}.json"
        timeout = (CONNECT_TIMEOUT, READ_TIMEOUT)
        with self.session.request(
            method, url, auth=self.node.auth, timeout=timeout, stream=True, **kwargs
        ) as response:
            too_long = ScrapydError(
                f"{self.label} answered {endpoint}.json with more than {self.max_answer:,} bytes"
            )
            declared = response.headers.get("Content-Length", "")
            if declared.isdigit() and int(declared) > self.max_answer:
                raise too_long
            body = bytearray()
            for chunk in response.iter_content(64 * 1024):
                body += chunk
                if len(body) > self.max_answer:
                    raise too_long
            return response.status_code, bytes(body)


def clear_text_beyond_loopback(url: str) -> bool:
    """Whether ``url`` is plain http to a host other than this machine (credentials readable on the way)."""
    parts = urlsplit(url)
    if parts.scheme != "http":
        return False
    host = parts.hostname or ""
    if host == "localhost":
        return False
    try:
        return not ipaddress.ip_address(host).is_loopback
    except ValueError:
        return True  # a name: it may resolve anywhere


def _reason(error: requests.RequestException) -> str:
    """The operating system's words for a connection error (``Connection refused``), else its kind.

    requests nests urllib3's errors inside its own, each repr'd into the next message;
    the ``[Errno N] text`` of the socket error at the bottom is what an operator needs.
    """
    found = _ERRNO_TEXT.search(str(error))
    return found[1].strip() if found else type(error).__name__


def _count(value: Any, key: str, label: str) -> int:
    if not isinstance(value, int) or value < 0:
        raise ScrapydError(f"{label} answered daemonstatus.json without a {key} count")
    return value


def _strings(value: Any, key: str, label: str) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise ScrapydError(f"{label} answered without a list of {key}")
    return value


def _optional_text(value: Any) -> str | None:
    return None if value is None else str(value)
