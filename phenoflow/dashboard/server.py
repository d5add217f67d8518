"""Wire the dashboard together: view + follower thread + ack producer + Starlette app + uvicorn."""

from __future__ import annotations

import errno
import logging
import socket
import threading
import time
from typing import Callable

import uvicorn

from phenoflow.connectors.kafka import clients as kafka_io
from phenoflow.core.config import Settings
from phenoflow.core.errors import UserError
from phenoflow.dashboard.follower import FOLLOWED, Follower
from phenoflow.dashboard.view import DashboardView
from phenoflow.dashboard.web import Broadcaster, create_app

__all__ = ["resolve_token", "check_port", "Dashboard", "serve"]

log = logging.getLogger("phenoflow.dashboard")


def resolve_token(settings: Settings, no_auth: bool) -> str | None:
    """The token clients must present, or None with ``--no-auth``; UserError when none is set."""
    if no_auth:
        return None
    if not settings.dashboard_token:
        raise UserError("no dashboard token configured — set PHENOFLOW_DASHBOARD_TOKEN (or dashboard_token "
                        "in the config file), or pass --no-auth to run without access control")
    if len(settings.dashboard_token) < 8:
        raise UserError("the dashboard token is shorter than 8 characters — choose a longer one, e.g. "
                        "`python -c 'import secrets; print(secrets.token_urlsafe(24))'`")
    return settings.dashboard_token


def check_port(host: str, port: int) -> None:
    """UserError when ``host:port`` cannot be bound (taken, or not an address of this machine)."""
    try:
        with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind((host, port))
    except OSError as exc:
        why = "is taken" if exc.errno == errno.EADDRINUSE else f"cannot be used ({exc.strerror})"
        raise UserError(f"port {port} on {host} {why} — pass another --port or --host") from None


class Dashboard:
    """Everything behind one dashboard instance. ``start()`` in a thread (tests, demo) or ``run()``."""

    def __init__(self, settings: Settings, *, token: str | None, clock: str = "wall") -> None:
        if clock not in ("wall", "data"):
            raise UserError(f"--clock {clock!r} is unknown — use wall (live use) or data (replays)")
        self.settings = settings
        kafka_io.ensure_topics(settings, FOLLOWED)  # also a one-line error when no broker answers
        self.view = DashboardView(settings.dashboard_days)
        self.broadcaster = Broadcaster()
        self.follower = Follower(settings, self.view, self.broadcaster.publish)
        self.producer = kafka_io.producer(settings, **{"linger.ms": 0})
        self.app = create_app(self.view, token=token, send_ack=self.send_ack, broadcaster=self.broadcaster,
                              clock=clock, status=self.status)
        self.server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    def status(self) -> dict:
        """Follower state for /api/status: ready, last error, records read per topic."""
        f = self.follower
        return {"ready": f.ready.is_set(), "error": f.error, "records": dict(f.stats),
                "participants": len(self.view.people)}

    def send_ack(self, key: bytes, value: bytes) -> None:
        """Write one ``events.ack`` record and wait for the broker's confirmation."""
        errors: list[str] = []

        def done(err: object, _msg: object) -> None:
            if err is not None:
                errors.append(str(err))

        self.producer.produce(self.settings.topic("events.ack"), key=key, value=value, on_delivery=done)
        if self.producer.flush(10) > 0:
            raise RuntimeError("the broker did not confirm within 10 s")
        if errors:
            raise RuntimeError(errors[0])

    def _config(self, host: str, port: int) -> uvicorn.Config:
        return uvicorn.Config(self.app, host=host, port=port, log_level="warning", access_log=False,
                              timeout_graceful_shutdown=1, lifespan="off")

    def start(self, host: str = "127.0.0.1", port: int = 0, wait_ready: float = 60.0) -> int:
        """Follow the topics and serve in background threads; return the bound port."""
        if port == 0:
            from phenoflow.connectors.broker import free_port

            port = free_port()
        self.follower.start()
        self.server = uvicorn.Server(self._config(host, port))
        self._thread = threading.Thread(target=self.server.run, name="dashboard-http", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + wait_ready
        while not (self.server.started and self.follower.ready.is_set()):
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("the dashboard did not start")
            time.sleep(0.05)
        return port

    def stop(self) -> None:
        """Stop the follower and the web server."""
        self.follower.stop()
        if self.server is not None:
            self.server.should_exit = True
        if self._thread is not None:
            self._thread.join(10)
        self.follower.join(10)
        self.producer.flush(5)

    def run(self, host: str, port: int) -> None:
        """Serve in the foreground until Ctrl-C."""
        self.follower.start()
        try:
            uvicorn.Server(self._config(host, port)).run()
        finally:
            self.follower.stop()
            self.producer.flush(5)


def serve(settings: Settings, *, host: str = "127.0.0.1", port: int = 8050, no_auth: bool = False,
          clock: str = "wall", say: Callable[[str], None] = print) -> None:
    """``phenoflow dashboard``: check settings, then serve until Ctrl-C."""
    if clock not in ("wall", "data"):
        raise UserError(f"--clock {clock!r} is unknown — use wall (live use) or data (replays)")
    token = resolve_token(settings, no_auth)
    check_port(host, port)
    if token is None:
        say(f"warning: --no-auth: anyone who can reach {host}:{port} sees the dashboard")
    if host not in ("127.0.0.1", "localhost", "::1"):
        say(f"warning: listening on {host}, not only on this machine; put TLS in front of it")
    dash = Dashboard(settings, token=token, clock=clock)
    shown = "127.0.0.1" if host in ("0.0.0.0", "::") else host
    say(f"dashboard on http://{shown}:{port}/ (reading {settings.bootstrap}, prefix {settings.topic_prefix!r}); "
        + ("open it with ?token=<your token> once" if token else "no token needed") + "; Ctrl-C stops")
    dash.run(host, port)
