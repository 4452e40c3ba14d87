"""The dashboard's web server (aiohttp): one refresh loop reads the crawl, every request serves its result.

Routes ``/``, ``/api/state``, ``/api/series``, ``/metrics`` and ``/static/…``, all behind :mod:`.auth`
when a token is set; Redis and the project's store are read once per refresh, from a thread.

Design notes: docs/framework-design.md#dashboard-server.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import time
from importlib import resources
from typing import Any, ClassVar

import redis
from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError
from aiohttp.web_runner import GracefulExit
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest
from yarl import URL

from scrapy_sharedcrawl.dashboard import auth
from scrapy_sharedcrawl.dashboard.metrics import registry
from scrapy_sharedcrawl.dashboard.state import DashboardReader
from scrapy_sharedcrawl.redact import redact_uri

logger = logging.getLogger(__name__)

STATIC = resources.files("scrapy_sharedcrawl.dashboard") / "static"
#: What the page may load and do: its own files only, no inline script, no framing.
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
        "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}
#: The static files' names: letters, digits, dots, dashes (never a path or a leading dot).
_STATIC_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,100}")


class Dashboard:
    """The latest snapshot and charts, refreshed every ``refresh`` seconds by :meth:`run`."""

    def __init__(self, reader: DashboardReader, refresh: float) -> None:
        self.reader = reader
        self.refresh = refresh
        self.snapshot: dict[str, Any] | None = None
        self.charts: dict[str, Any] | None = None
        self.refreshed_at: float | None = None
        self.error: str | None = None
        self.refreshes = 0
        self.refusals = Refusals()
        self._changed = asyncio.Event()

    async def run(self) -> None:
        """Refresh forever; a failed refresh keeps the last snapshot and says why (logged once)."""
        while True:
            await self.refresh_once()
            await asyncio.sleep(self.refresh)  # the loop's pace: a refresh every `refresh` seconds

    async def refresh_once(self) -> None:
        try:
            snapshot, charts = await asyncio.to_thread(self._read)
        except redis.RedisError as error:
            message = f"Redis unreachable at {self.reader.status_reader.where} ({type(error).__name__})"
            if self.error != message:
                logger.warning("Dashboard: %s — showing the last reading, retrying", message)
            self.error = message
        except Exception as error:  # anything else: said once, and the server keeps serving
            message = f"refresh failed: {type(error).__name__}: {redact_uri(str(error))[:300]}"
            if self.error != message:
                logger.exception("Dashboard: %s", message)
            self.error = message
        else:
            if self.error is not None:
                logger.info("Dashboard: reading the crawl again")
            self.snapshot, self.charts, self.error = snapshot, charts, None
            self.refreshed_at = time.time()
        self.refreshes += 1

    def _read(self) -> tuple[dict[str, Any], dict[str, Any]]:
        snapshot = self.reader.read()
        return snapshot, self.reader.charts()

    def metrics_source(self) -> tuple[dict[str, Any] | None, float | None, bool]:
        return self.snapshot, self.refreshed_at, self.error is None and self.snapshot is not None

    def state(self) -> dict[str, Any]:
        return {
            **(self.snapshot or {}),
            "refreshed_at": self.refreshed_at,
            "refresh_interval": self.refresh,
            "error": self.error,
        }


def create_app(dashboard: Dashboard, token: str = "") -> web.Application:
    """The application: routes, the token check, security headers, the refresh loop's life."""
    app = web.Application(middlewares=[_guard(token, dashboard.refusals)])
    app.on_response_prepare.append(_security_headers)
    metrics = registry(dashboard.metrics_source, lambda: dashboard.refusals.counts)

    async def index(request: web.Request) -> web.Response:
        page = (STATIC / "index.html").read_text(encoding="utf-8")
        return web.Response(text=page, content_type="text/html")

    async def state(request: web.Request) -> web.Response:
        return web.json_response(dashboard.state())

    async def series(request: web.Request) -> web.Response:
        return web.json_response(dashboard.charts or {})

    async def prometheus(request: web.Request) -> web.Response:
        body = generate_latest(metrics)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def static(request: web.Request) -> web.Response:
        name = request.match_info["name"]
        types = {".js": "text/javascript", ".css": "text/css", ".txt": "text/plain"}
        suffix = name[name.rfind(".") :] if "." in name else ""
        # a plain file name only: no path, no NUL or other byte a file system refuses
        if suffix not in types or not _STATIC_NAME.fullmatch(name) or not (path := STATIC / name).is_file():
            raise web.HTTPNotFound()
        return web.Response(body=path.read_bytes(), content_type=types[suffix], charset="utf-8")

    app.router.add_get("/", index)
    app.router.add_get("/api/state", state)
    app.router.add_get("/api/series", series)
    app.router.add_get("/metrics", prometheus)
    app.router.add_get("/static/{name}", static)

    async def refresher(app: web.Application) -> Any:
        await dashboard.refresh_once()  # the first request finds a snapshot
        task = asyncio.create_task(dashboard.run())
        yield
        task.cancel()

    app.cleanup_ctx.append(refresher)
    return app


class Refusals:
    """Requests refused, by reason: counted for ``/metrics``, said in one log line per reason, not one
    per request (a client that sends junk in a loop must not fill the log)."""

    REASONS: ClassVar[dict[str, str]] = {
        "token": "no valid token",
        "host": "without a token, only loopback host names are served",
        "malformed": "not a request HTTP can read",
    }

    def __init__(self) -> None:
        self.counts = dict.fromkeys(self.REASONS, 0)

    def refuse(self, reason: str, remote: str | None) -> None:
        if not self.counts[reason]:
            logger.warning(
                "Dashboard: refused a request from %s (%s); later ones are counted in "
                "sharedcrawl_dashboard_refused_total, not logged",
                remote,
                self.REASONS[reason],
            )
        self.counts[reason] += 1


class ServerLog(logging.LoggerAdapter):
    """aiohttp's server log, where a request its parser can't read (answered 400) is a refusal.

    aiohttp logs each of those at ERROR with a traceback: a client's junk, not a fault here.
    """

    def __init__(self, refusals: Refusals) -> None:
        super().__init__(logging.getLogger("aiohttp.server"), {})
        self.refusals = refusals

    def exception(self, msg: object, *args: object, exc_info: Any = True, **kwargs: Any) -> None:
        if isinstance(exc_info, HttpProcessingError) and (exc_info.code or 400) < 500:
            self.refusals.refuse("malformed", str(args[0]) if args else None)
            return
        super().exception(msg, *args, exc_info=exc_info, **kwargs)


def app_runner(dashboard: Dashboard, token: str, **options: Any) -> web.AppRunner:
    """The server's runner: the application, and aiohttp's log through :class:`ServerLog`."""
    return web.AppRunner(create_app(dashboard, token), logger=ServerLog(dashboard.refusals), **options)


def _guard(token: str, refusals: Refusals) -> Any:
    @web.middleware
    async def guard(request: web.Request, handler: Any) -> web.StreamResponse:
        if not token and not auth.loopback_host(request.headers.get("Host", "")):
            refusals.refuse("host", request.remote)
            raise web.HTTPForbidden(
                text="403: without a token this dashboard answers only to 127.0.0.1, [::1] and localhost\n"
            )
        query = request.query.get("token", "")
        candidates = auth.presented(request.headers.get("Authorization", ""), query)
        if not auth.allowed(token, candidates, request.cookies.get(auth.COOKIE, "")):
            refusals.refuse("token", request.remote)
            raise web.HTTPUnauthorized(
                text="401: this dashboard needs its token (Bearer, Basic password, or ?token=)\n",
                headers={"WWW-Authenticate": 'Basic realm="sharedcrawl dashboard", charset="UTF-8"'},
            )
        if token and query:  # a link with ?token=: remember it in a cookie, and take it out of the address
            rest = [(name, value) for name, value in request.query.items() if name != "token"]
            location = local_location(request.rel_url.with_query(rest))
            response = web.Response(status=303, text=f"303: see {location}\n", headers={"Location": location})
            response.set_cookie(
                auth.COOKIE,
                auth.cookie_value(token),
                httponly=True,
                samesite="Strict",
                path="/",
                secure=behind_tls(request),
            )
            return response
        return await handler(request)

    return guard


def local_location(url: URL) -> str:
    """A redirect's target on this server: ``url``'s path and query, never another host.

    A request for ``//evil.example/x`` has that path: given as a ``Location`` it would send a browser
    to evil.example, and so would ``/\\evil.example`` (browsers read a backslash as a slash). Leading
    slashes and backslashes are folded into one; the rest stays percent-encoded as it came.
    """
    location = "/" + url.raw_path.lstrip("/\\")
    return location + (f"?{url.raw_query_string}" if url.raw_query_string else "")


def behind_tls(request: web.Request) -> bool:
    """Whether the browser reached us over https: directly, or through a proxy that says so (the
    cookie is then ``Secure``; a client that lies only keeps its own cookie off plain http)."""
    return request.secure or request.headers.get("X-Forwarded-Proto", "").strip().lower() == "https"


async def _security_headers(request: web.Request, response: web.StreamResponse) -> None:
    """Every answer (401, 403, 404 and redirects too) carries the policy: no sniffing, no framing."""
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)


def serve(dashboard: Dashboard, host: str, port: int, token: str) -> None:
    """Run the server until interrupted (Ctrl-C, SIGTERM); print ``dashboard at URL`` once listening."""
    auth.check_token(host, token)
    with contextlib.suppress(KeyboardInterrupt, GracefulExit):
        asyncio.run(_serve(app_runner(dashboard, token, handle_signals=True), host, port))


async def _serve(runner: web.AppRunner, host: str, port: int) -> None:
    await runner.setup()
    try:
        await web.TCPSite(runner, host, port).start()
        bound_host, bound_port = runner.addresses[0][:2]
        shown = f"[{bound_host}]" if ":" in bound_host else bound_host
        print(f"dashboard at http://{shown}:{bound_port}/", flush=True)
        await asyncio.Event().wait()  # serve until a signal ends the loop
    finally:
        await runner.cleanup()
