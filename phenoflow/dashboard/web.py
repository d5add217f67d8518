"""The dashboard web app (Starlette): auth, pages, JSON API, live stream (SSE), acknowledgements.

Routes (every one behind the token, see :class:`TokenAuth`):

* ``/`` cohort page, ``/p/{participant}`` participant page (seed Fig. 4),
  ``/p/{participant}/day/{day}`` the raw numbers behind a day, ``/inbox`` alert inbox;
* ``/api/cohort``, ``/api/participant/{p}``, ``/api/inbox``, ``/api/day/{p}/{day}`` JSON;
* ``/stream`` server-sent events: ``alert`` (a new anomaly / step-up) and ``ack``;
* ``POST /api/ack`` {event_id, participant, by, note} → one ``events.ack`` record,
  keyed by participant. The page learns of it like every other instance: from the
  topic, through the follower and the stream.
* ``/static/plotly.min.js`` is the file shipped in the installed ``plotly`` package
  (no CDN: the pages work offline).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import re
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from urllib.parse import parse_qsl, urlencode

import msgspec
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, PlainTextResponse, RedirectResponse, Response, StreamingResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates
from starlette.types import ASGIApp, Receive, Scope, Send

from phenoflow.core.contract import AckEvent, DeadLetter, decode, encode
from phenoflow.dashboard.view import COVERAGE_GROUPS, TRAJECTORIES, DashboardView

__all__ = ["HERE", "COOKIE", "plotly_js", "session_value", "TokenAuth", "Broadcaster", "create_app"]

log = logging.getLogger("phenoflow.dashboard")
HERE = Path(__file__).parent
COOKIE = "phenoflow_session"
_SAFE_ID = re.compile(r"^[A-Za-z0-9_.\-]{1,64}$")
_DAY = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def plotly_js() -> Path:
    """Path of plotly.min.js inside the installed ``plotly`` package."""
    import plotly

    path = Path(plotly.__file__).parent / "package_data" / "plotly.min.js"
    if not path.exists():
        raise FileNotFoundError(f"{path} missing — reinstall the plotly package (pip install plotly)")
    return path


def session_value(token: str) -> str:
    """Cookie value for ``token``: an HMAC, so the cookie never carries the token itself,
    stays valid across restarts and is the same for every instance sharing the token."""
    return hmac.new(token.encode(), b"phenoflow-dashboard-session", hashlib.sha256).hexdigest()


class TokenAuth:
    """Pure ASGI middleware: ``Authorization: Bearer``, the session cookie, or ``?token=`` once.

    A correct ``?token=`` on a GET answers 303 to the same URL without the token and sets
    the session cookie (HttpOnly, SameSite=Strict), so the token leaves the address bar
    and the browser history. Anything else answers 401, the event stream included.
    """

    def __init__(self, app: ASGIApp, token: str | None) -> None:
        self.app, self.token = app, token
        self.cookie = session_value(token) if token else ""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """ASGI entry: pass authorised requests on, answer 401 otherwise."""
        if scope["type"] != "http" or self.token is None:
            await self.app(scope, receive, send)
            return
        req = Request(scope)
        auth = req.headers.get("authorization", "")
        if auth.lower().startswith("bearer ") and hmac.compare_digest(auth[7:].strip().encode(), self.token.encode()):
            await self.app(scope, receive, send)
            return
        if hmac.compare_digest(req.cookies.get(COOKIE, "").encode(), self.cookie.encode()):
            await self.app(scope, receive, send)
            return
        given = req.query_params.get("token")
        if given is not None and req.method == "GET" and hmac.compare_digest(given.encode(), self.token.encode()):
            rest = urlencode([(k, v) for k, v in parse_qsl(scope.get("query_string", b"").decode()) if k != "token"])
            resp: Response = RedirectResponse(req.url.path + (f"?{rest}" if rest else ""), status_code=303)
            resp.set_cookie(COOKIE, self.cookie, httponly=True, samesite="strict", path="/")
            await resp(scope, receive, send)
            return
        resp = PlainTextResponse(
            "401 Unauthorized: open the dashboard URL with ?token=… once, or send 'Authorization: Bearer …'",
            status_code=401, headers={"WWW-Authenticate": 'Bearer realm="phenoflow"'})
        await resp(scope, receive, send)


class Broadcaster:
    """Fans notifications from the follower thread out to every open event stream."""

    def __init__(self) -> None:
        self._subs: set[tuple[asyncio.AbstractEventLoop, asyncio.Queue]] = set()

    def subscribe(self) -> tuple[asyncio.AbstractEventLoop, asyncio.Queue]:
        """A queue (on the caller's event loop) that receives every new alert for one SSE client."""
        sub: tuple[asyncio.AbstractEventLoop, asyncio.Queue] = (asyncio.get_running_loop(), asyncio.Queue(maxsize=10_000))
        self._subs.add(sub)
        return sub

    def unsubscribe(self, sub: tuple[asyncio.AbstractEventLoop, asyncio.Queue]) -> None:
        """Forget an SSE client's queue (its connection closed)."""
        self._subs.discard(sub)

    def publish(self, notes: list[dict]) -> None:
        """Thread-safe: called from the follower thread."""
        for loop, q in list(self._subs):
            for note in notes:
                try:
                    loop.call_soon_threadsafe(_put, q, note)
                except RuntimeError:  # the loop is closed: the server is stopping
                    self._subs.discard((loop, q))


def _put(q: asyncio.Queue, note: dict) -> None:
    if not q.full():  # a stalled client loses notifications rather than the server's memory
        q.put_nowait(note)


def create_app(view: DashboardView, *, token: str | None, send_ack: Callable[[bytes, bytes], None],
               broadcaster: Broadcaster, clock: str = "wall", status: Callable[[], dict] = dict) -> ASGIApp:
    """The ASGI app. ``send_ack(key, value)`` writes one ``events.ack`` record and
    raises on failure; ``status()`` reports the follower (ready, error, counts)."""
    templates = Jinja2Templates(directory=str(HERE / "templates"))
    templates.env.filters["tojson_safe"] = lambda v: json.dumps(v).replace("<", "\\u003c")

    def now() -> float:
        return view.now(clock, time.time())

    def page(request: Request, name: str, **ctx: object) -> Response:
        st = status()
        as_of = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(now())) if now() else "no data yet"
        return templates.TemplateResponse(request, name, {
            "as_of": as_of, "clock": clock, "status": st, "groups": COVERAGE_GROUPS,
            "trajectories": TRAJECTORIES, **ctx})

    def pid_of(request: Request) -> str:
        pid = request.path_params["participant"]
        if not _SAFE_ID.match(pid):
            raise _NotFound()
        return pid

    async def cohort_page(request: Request) -> Response:
        return page(request, "cohort.html", page="cohort", rows=view.cohort(now()))

    async def participant_page(request: Request) -> Response:
        data = view.participant(pid_of(request))
        if data is None:
            return page(request, "missing.html", page="missing", what=f"participant {pid_of(request)}")
        return page(request, "participant.html", page="participant", p=data)

    async def day_page(request: Request) -> Response:
        day = request.path_params["day"]
        data = view.day_detail(pid_of(request), day) if _DAY.match(day) else None
        if data is None:
            return page(request, "missing.html", page="missing", what=f"day {day}")
        return page(request, "day.html", page="day", d=data)

    async def inbox_page(request: Request) -> Response:
        return page(request, "inbox.html", page="inbox", participants=sorted(view.people))

    async def api_cohort(request: Request) -> Response:
        return JSONResponse({"now": now(), "rows": view.cohort(now())})

    async def api_participant(request: Request) -> Response:
        data = view.participant(pid_of(request))
        return JSONResponse(data) if data is not None else JSONResponse({"error": "unknown participant"}, 404)

    async def api_day(request: Request) -> Response:
        data = view.day_detail(pid_of(request), request.path_params["day"])
        return JSONResponse(data) if data is not None else JSONResponse({"error": "no such day"}, 404)

    async def api_inbox(request: Request) -> Response:
        kind = request.query_params.get("kind") or None
        who = request.query_params.get("participant") or None
        if kind not in (None, "anomaly", "stepup"):
            return JSONResponse({"error": "kind must be anomaly or stepup"}, 400)
        return JSONResponse({"alerts": view.inbox(kind, who)})

    async def api_ack(request: Request) -> Response:
        try:
            body = await request.json()
        except (json.JSONDecodeError, UnicodeDecodeError):
            return JSONResponse({"error": "send a JSON object"}, 400)
        if not isinstance(body, dict):
            return JSONResponse({"error": "send a JSON object"}, 400)
        pid, eid = str(body.get("participant", "")), str(body.get("event_id", ""))
        with view.lock:
            known = view.people.get(pid)
            exists = known is not None and eid in known.alerts
        if not exists:
            return JSONResponse({"error": "unknown event for this participant"}, 404)
        ack = AckEvent(participant=pid, event_id=eid, ts=round(time.time(), 3),
                       by=str(body.get("by", "")).strip()[:100], note=str(body.get("note", "")).strip()[:2000])
        value = encode(ack)
        checked = decode("events.ack", pid.encode(), value)
        if isinstance(checked, DeadLetter):
            return JSONResponse({"error": checked.error}, 400)
        try:
            await asyncio.get_running_loop().run_in_executor(None, send_ack, pid.encode(), value)
        except Exception as exc:  # noqa: BLE001 - the page shows why the note was not saved
            log.error("writing events.ack failed: %s", exc)
            return JSONResponse({"error": f"could not write the acknowledgement ({exc}); try again"}, 503)
        return JSONResponse(msgspec.to_builtins(ack))

    async def stream(request: Request) -> Response:
        async def events() -> AsyncIterator[str]:
            sub = broadcaster.subscribe()
            try:
                yield "retry: 2000\n: connected\n\n"
                while True:
                    try:
                        note = await asyncio.wait_for(sub[1].get(), timeout=15)
                    except asyncio.TimeoutError:
                        yield ": keep-alive\n\n"
                        continue
                    yield f"event: {note['kind']}\ndata: {json.dumps(note)}\n\n"
            finally:
                broadcaster.unsubscribe(sub)

        return StreamingResponse(events(), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})

    async def plotly(request: Request) -> Response:
        return FileResponse(plotly_js(), media_type="text/javascript",
                            headers={"Cache-Control": "max-age=86400"})

    async def health(request: Request) -> Response:
        return JSONResponse(status())

    routes = [
        Route("/", cohort_page),
        Route("/p/{participant}", participant_page),
        Route("/p/{participant}/day/{day}", day_page),
        Route("/inbox", inbox_page),
        Route("/api/cohort", api_cohort),
        Route("/api/participant/{participant}", api_participant),
        Route("/api/day/{participant}/{day}", api_day),
        Route("/api/inbox", api_inbox),
        Route("/api/ack", api_ack, methods=["POST"]),
        Route("/api/status", health),
        Route("/stream", stream),
        Route("/static/plotly.min.js", plotly),
        Mount("/static", StaticFiles(directory=str(HERE / "static")), name="static"),
    ]

    async def not_found(request: Request, exc: Exception) -> Response:
        return PlainTextResponse("404 Not Found", status_code=404)

    app = Starlette(routes=routes, exception_handlers={_NotFound: not_found, 404: not_found})
    return TokenAuth(app, token)


class _NotFound(Exception):
    pass
