"""Clinician dashboard: live latency, memory of the view, participant page load.

1. **Produce → browser latency** (100 anomaly events, one every 100 ms): the time
   from just before ``produce`` to the moment the event's row is in the inbox
   page's DOM (a MutationObserver stamps ``Date.now()``; same machine clock).
   Baseline in the same run: a plain confluent-kafka consumer (assignment, same
   fetch settings) receiving the same kind of events — the broker's share.
2. **Memory** of :class:`DashboardView` for N participants × D days (tracemalloc,
   current bytes after feeding): 24 hourly records, a score and a rhythm day per
   participant-day (rhythm for the last 3 days only: that state does not grow with
   days, and building 2,022-feature dicts for 90,000 days would dominate the run),
   5 anomalies and 1 step-up per participant. Baseline: keeping the same records
   decoded as they arrive (msgspec structs), measured on 10 participants and scaled.
3. **Participant page load** (90 days, 5 alerts): navigation start → the Plotly
   figure drawn, median of 10 loads, against a page that loads only plotly.min.js.

Run: ``.venv/bin/python benchmarks/bench_dashboard.py [--participants 1000 --days 90]``
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
import tracemalloc
import uuid
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import numpy as np

from phenoflow.connectors.broker import EmbeddedBroker
from phenoflow.connectors.kafka import clients as kafka_io
from phenoflow.core.config import load_settings
from phenoflow.core.contract import (
    AnomalyEvent,
    Contributor,
    HourlyFeatures,
    RhythmDaily,
    ScoreDaily,
    StepUpEvent,
    decode,
    encode,
)
from phenoflow.dashboard.server import Dashboard
from phenoflow.dashboard.view import DashboardView
from phenoflow.operators.hourly.schema import FEATURE_NAMES
from phenoflow.operators.rhythm.statistics import feature_names

TOKEN = "bench-token-123456"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]
D0 = date(2024, 1, 1)
T0 = datetime(2024, 1, 1, tzinfo=timezone.utc).timestamp()
RHYTHM = feature_names()


def records(pid: str, days: int, rng: np.random.Generator, rhythm_days: int = 3) -> list[tuple[str, object]]:
    """Decoded contract values for one participant, in topic order."""
    out: list[tuple[str, object]] = []
    for d in range(days):
        day = (D0 + timedelta(days=d)).isoformat()
        for h in range(24):
            vals = dict(zip(FEATURE_NAMES, rng.random(len(FEATURE_NAMES)).round(3).tolist(), strict=True))
            out.append(("features.hourly", HourlyFeatures(participant=pid, hour_start=T0 + 86400 * d + 3600 * h,
                                                          local_hour=h, weekday=0, features=vals,
                                                          filled=0.2 if h % 5 else 1.0)))
        if d >= days - rhythm_days:
            out.append(("rhythm.daily", RhythmDaily(participant=pid, day=day, coverage={},
                                                    features=dict(zip(RHYTHM, rng.random(len(RHYTHM)).tolist(), strict=True)))))
        out.append(("scores.daily", ScoreDaily(participant=pid, day=day, score=float(rng.random()), threshold=0.9,
                                               calibrating=d < 28, model="bench")))
        if d in (40, 50, 60, 70, days - 1):
            out.append(("events.anomaly", AnomalyEvent(
                participant=pid, event_id=f"{pid}-{d}", day=day, score=2.0, threshold=0.9, model="bench",
                contributors=[Contributor(feature=n, z=3.0 - i / 2) for i, n in enumerate(RHYTHM[:5])])))
    out.append(("events.stepup", StepUpEvent(participant=pid, event_id=f"{pid}-s", from_level="regular",
                                             to_level="low", source="survey", evidence={"score": 4},
                                             ts=T0 + 86400 * (days - 2))))
    return out


def _rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _feed(view: DashboardView, one: list[tuple[str, object]], first: int, count: int) -> int:
    n = 0
    for i in range(first, first + count):
        pid = f"p{i:05d}"
        for topic, value in one:
            view.apply(topic, _with_pid(value, pid))
            n += 1
    return n


def bench_memory(participants: int, days: int, traced: int = 100) -> None:
    """tracemalloc on ``traced`` participants (exact bytes, scaled: the state is per participant),
    and the process RSS growth for all ``participants`` (no tracing, real allocator)."""
    rng = np.random.default_rng(1)
    one = records("p00000", days, rng)
    view = DashboardView(days)  # first, so that RSS growth is not memory freed by an earlier run
    rss0 = _rss_mib()
    t = time.perf_counter()
    n = _feed(view, one, 0, participants)
    secs = time.perf_counter() - t
    rss = _rss_mib() - rss0
    del view
    tracemalloc.start()
    kept = [records(f"b{i}", days, rng) for i in range(10)]
    naive = tracemalloc.get_traced_memory()[0] / 10
    del kept
    tracemalloc.stop()
    view = DashboardView(days)
    tracemalloc.start()
    _feed(view, one, 0, traced)
    cur = tracemalloc.get_traced_memory()[0] / traced
    tracemalloc.stop()
    print(f"memory, {participants:,} participants × {days} days ({n:,} records fed in {secs:.0f} s = {n / secs:,.0f} records/s):")
    print(f"  DashboardView, process RSS growth    {rss:8.1f} MiB")
    print(f"  DashboardView, tracemalloc           {cur * participants / 2**20:8.1f} MiB  ({cur / 1024:.0f} KiB per participant, "
          f"measured on {traced})")
    print(f"  records kept decoded (baseline)      {naive * participants / 2**20:8.1f} MiB  (measured on 10, scaled)  "
          f"ratio {naive / cur:.1f}×")


def _with_pid(value: object, pid: str) -> object:
    import msgspec

    changes: dict[str, object] = {"participant": pid}
    if hasattr(value, "event_id"):
        changes["event_id"] = value.event_id.replace("p00000", pid)
    return msgspec.structs.replace(value, **changes)


def bench_latency(n: int = 100) -> None:
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory() as tmp, EmbeddedBroker(port=0, log_file=Path(tmp) / "b.log") as broker:
        settings = load_settings(bootstrap=broker.bootstrap, topic_prefix="bench.", dashboard_token=TOKEN)
        dash = Dashboard(settings, token=TOKEN, clock="wall")
        port = dash.start()
        prod = kafka_io.producer(settings, **{"linger.ms": 0})
        topic = settings.topic("events.anomaly")
        # Baseline: a plain assigned consumer on the same topic.
        from confluent_kafka import OFFSET_END

        plain = kafka_io.consumer(settings, **{"fetch.wait.max.ms": 50})
        kafka_io.assign_all(plain, topic, kafka_io.topic_partitions(settings, topic), OFFSET_END)
        plain.consume(10, timeout=2.0)
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path="/usr/bin/chromium", args=ARGS)
            page = browser.new_page()
            page.goto(f"http://127.0.0.1:{port}/inbox?token={TOKEN}")
            page.wait_for_selector("#live:not(.off)")
            page.evaluate("""() => { window.__seen = {};
              new MutationObserver(() => { for (const r of document.querySelectorAll('#inbox tr[data-event-id]'))
                if (!(r.dataset.eventId in window.__seen)) window.__seen[r.dataset.eventId] = Date.now(); })
              .observe(document.querySelector('#inbox tbody'), {childList: true}); }""")
            sent: dict[str, float] = {}
            plain_lat: list[float] = []
            for i in range(n):
                eid = str(uuid.uuid4())
                ev = AnomalyEvent(participant=f"q{i % 7}", event_id=eid, day="2024-03-01", score=2.0, threshold=1.0,
                                  contributors=[Contributor(feature="call_n", z=2.0)], model="bench")
                sent[eid] = time.time()
                prod.produce(topic, key=ev.participant.encode(), value=encode(ev))
                prod.poll(0)
                deadline = time.time() + 5
                while time.time() < deadline:  # the plain consumer's view of the same message
                    m = plain.poll(0.5)  # returns on the first message, unlike consume(n, timeout)
                    if m is not None and m.error() is None and decode("events.anomaly", None, m.value()).event_id == eid:
                        plain_lat.append(time.time() - sent[eid])
                        break
                time.sleep(0.1)
            time.sleep(3)
            seen = page.evaluate("window.__seen")
            browser.close()
        plain.close()
        dash.stop()
    lat = sorted(seen[e] / 1000 - t for e, t in sent.items() if e in seen)
    pl = sorted(plain_lat)

    def p95(x: list[float]) -> float:
        return x[min(len(x) - 1, int(round(0.95 * (len(x) - 1))))]

    print(f"produce → browser latency, {len(lat)}/{n} events shown:")
    print(f"  dashboard (broker → follower → SSE → DOM)  median {statistics.median(lat) * 1000:6.0f} ms  "
          f"p95 {p95(lat) * 1000:6.0f} ms")
    print(f"  plain consumer (broker only)                 median {statistics.median(pl) * 1000:6.0f} ms  "
          f"p95 {p95(pl) * 1000:6.0f} ms  ratio of medians {statistics.median(lat) / statistics.median(pl):.1f}×")


def bench_page_load(days: int, loads: int = 10) -> None:
    from playwright.sync_api import sync_playwright

    from phenoflow.dashboard.web import plotly_js

    with tempfile.TemporaryDirectory() as tmp, EmbeddedBroker(port=0, log_file=Path(tmp) / "b.log") as broker:
        settings = load_settings(bootstrap=broker.bootstrap, topic_prefix="bench2.", dashboard_token=TOKEN)
        dash = Dashboard(settings, token=TOKEN, clock="data")
        for topic, value in records("p1", days, np.random.default_rng(2)):
            dash.view.apply(topic, value)
        port = dash.start()
        blank = Path(tmp) / "plotly-only.html"
        blank.write_text(f'<!doctype html><script src="file://{plotly_js()}"></script><div id="x">ok</div>')
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path="/usr/bin/chromium", args=ARGS)
            page = browser.new_page(viewport={"width": 1360, "height": 900})
            page.goto(f"http://127.0.0.1:{port}/?token={TOKEN}")
            ours, base = [], []
            for _ in range(loads):
                t = time.perf_counter()
                page.goto(f"http://127.0.0.1:{port}/p/p1")
                page.wait_for_selector("#fig .main-svg .scatterlayer .trace")
                ours.append(time.perf_counter() - t)
                t = time.perf_counter()
                page.goto(blank.as_uri())
                page.wait_for_function("typeof Plotly !== 'undefined'")
                base.append(time.perf_counter() - t)
            browser.close()
        dash.stop()
    print(f"participant page ({days} days, 6 trajectories, 5 alerts), median of {loads} loads (browser cache warm):")
    print(f"  /p/<id> until the figure is drawn   {statistics.median(ours) * 1000:6.0f} ms")
    print(f"  a page that only loads plotly.min.js {statistics.median(base) * 1000:6.0f} ms  "
          f"ratio {statistics.median(ours) / statistics.median(base):.1f}×")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--participants", type=int, default=1000)
    ap.add_argument("--days", type=int, default=90)
    ap.add_argument("--events", type=int, default=100)
    a = ap.parse_args()
    bench_memory(a.participants, a.days)  # first: RSS growth needs a fresh heap
    bench_latency(a.events)
    bench_page_load(a.days)


if __name__ == "__main__":
    main()
