"""`phenoflow demo --dashboard` through the CLI: it serves the dashboard on the demo's outputs and prints its URL."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from phenoflow.connectors.broker import free_port

pytestmark = pytest.mark.e2e


def test_demo_leaves_the_dashboard_running_and_prints_its_url(tmp_path: Path) -> None:
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "phenoflow", "demo", "--dashboard", "--out", str(tmp_path / "demo"),
                             "--participants", "2", "--days", "32", "--seed", "3", "--port", str(port)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        url = None
        deadline = time.monotonic() + 240
        lines = []
        while url is None and time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            lines.append(line)
            m = re.search(r"(http://127\.0\.0\.1:\d+/\?token=\S+)", line)
            url = m.group(1) if m else None
        assert url is not None, "".join(lines) + proc.stderr.read() if proc.poll() is not None else "".join(lines)
        assert "phenoflow demo" in "".join(lines)  # the summary comes first
        base, token = url.split("/?token=")
        deadline = time.monotonic() + 30
        while True:  # the URL is printed as the server starts
            try:
                urllib.request.urlopen(base + "/api/status", timeout=10)
            except urllib.error.HTTPError:
                break
            except urllib.error.URLError:
                assert time.monotonic() < deadline, "the dashboard never answered"
                time.sleep(0.2)
        with pytest.raises(urllib.error.HTTPError) as no:
            urllib.request.urlopen(base + "/api/status", timeout=10)
        assert no.value.code == 401
        req = urllib.request.Request(base + "/api/cohort", headers={"Authorization": f"Bearer {token}"})
        deadline = time.monotonic() + 30
        rows: list = []
        while len(rows) < 2 and time.monotonic() < deadline:  # the follower may still be catching up
            rows = json.loads(urllib.request.urlopen(req, timeout=10).read())["rows"]
            time.sleep(0.2)
        dumped = {json.loads(x)["participant"] for x in (tmp_path / "demo" / "outputs" / "features.hourly.jsonl").read_text().splitlines()}
        assert {r["participant"] for r in rows} == dumped == {"p001", "p002"}
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0
