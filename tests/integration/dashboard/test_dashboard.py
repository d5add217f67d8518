"""The clinician dashboard against the real broker, the real pipeline and a real browser.

A small simulated cohort is replayed and run through every stage; the dashboard
then follows the output topics (uvicorn in a thread on a free port) and Debian's
Chromium, driven by Playwright, checks the pages. Screenshots go to the test's
tmp folder (set PHENOFLOW_UPDATE_SCREENSHOTS=1 to also refresh docs/img/).
"""

from __future__ import annotations

import io
import json
import os
import shutil
import time
import urllib.error
import urllib.request
import uuid
from collections import Counter
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Iterator

import pytest
from bytewax.testing import run_main

from phenoflow.connectors.kafka.clients import ensure_topics, producer
from phenoflow.connectors.replay import replay
from phenoflow.connectors.subscribe import subscribe
from phenoflow.core.config import Settings, load_settings
from phenoflow.core.contract import ALL_TOPICS, AnomalyEvent, Contributor, encode
from phenoflow.dashboard.server import Dashboard
from phenoflow.flows.pipeline import build_flow
from phenoflow.simulate.simulator import simulate_cohort

pytestmark = pytest.mark.integration

TOKEN = "test-token-" + uuid.uuid4().hex[:8]
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def _topic(settings: Settings, topic: str) -> list[dict]:
    buf = io.BytesIO()
    subscribe(settings, topic, buf, from_beginning=True, timeout=1.0, dedupe=True)
    return [json.loads(line) for line in buf.getvalue().splitlines()]


@pytest.fixture(scope="module")
def stack(broker, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    tmp = tmp_path_factory.mktemp("dashboard")
    simulate_cohort(tmp / "cohort", participants=3, days=40, seed=5, relapse_share=1.0, signature_strength=2.0)
    settings = load_settings(bootstrap=broker.bootstrap, topic_prefix=f"dash{uuid.uuid4().hex[:6]}.",
                             dashboard_token=TOKEN)
    ensure_topics(settings, ALL_TOPICS)
    replay(tmp / "cohort", settings)
    run_main(build_flow(settings, ("hourly", "rhythm", "score"), until_end=True))
    dash = Dashboard(settings, token=TOKEN, clock="data")
    port = dash.start()
    from playwright.sync_api import sync_playwright

    pw = sync_playwright().start()
    browser = pw.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
    try:
        yield {"settings": settings, "dash": dash, "url": f"http://127.0.0.1:{port}", "browser": browser, "tmp": tmp}
    finally:
        browser.close()
        pw.stop()
        dash.stop()


@pytest.fixture
def page(stack: dict) -> Iterator[object]:
    """A logged-in page (first visit with ?token=, then the session cookie) that fails on console errors."""
    ctx = stack["browser"].new_context(viewport={"width": 1360, "height": 900})
    pg = ctx.new_page()
    errors: list[str] = []
    pg.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    pg.on("pageerror", lambda e: errors.append(str(e)))
    pg.goto(f"{stack['url']}/?token={TOKEN}")
    assert "token=" not in pg.url  # the token leaves the address bar after the first visit
    yield pg
    ctx.close()
    assert errors == [], errors


def _shot(pg: object, stack: dict, name: str) -> None:
    path = stack["tmp"] / f"{name}.png"
    pg.screenshot(path=str(path), full_page=True)
    if os.environ.get("PHENOFLOW_UPDATE_SCREENSHOTS") == "1":
        dest = Path(__file__).resolve().parents[3] / "docs" / "img" / f"dashboard-{name}.png"
        dest.parent.mkdir(exist_ok=True)
        shutil.copyfile(path, dest)


def test_cohort_page_lists_every_participant_with_the_topic_anomaly_counts(stack: dict, page: object) -> None:
    settings = stack["settings"]
    anomalies = _topic(settings, "events.anomaly")
    hourly = _topic(settings, "features.hourly")
    participants = {h["participant"] for h in hourly}
    assert participants == {"p001", "p002", "p003"} and anomalies
    # "Now" of a replay (clock=data) = end of the newest hour published; 7/30-day windows end on its date.
    newest = max(h["hour_start"] for h in hourly) + 3600
    today = datetime.fromtimestamp(newest - 1, timezone.utc).date()  # the day that ends at `newest`
    for pid in sorted(participants):
        days = [date.fromisoformat(a["day"]) for a in anomalies if a["participant"] == pid]
        want7 = sum(d > today - timedelta(days=7) for d in days)
        want30 = sum(d > today - timedelta(days=30) for d in days)
        cell = page.locator(f'tr[data-participant="{pid}"] td.anomalies')
        assert cell.inner_text().replace(" ", "") == f"{want7}/{want30}", pid
    # All anomalies fall after the 28 calibration days, inside the last 30 days: the page shows them all.
    assert sum(Counter(a["participant"] for a in anomalies).values()) == len(anomalies)
    assert page.locator("#cohort tbody tr").count() == 3
    # Newest alert first.
    shown = [page.locator("#cohort tbody tr").nth(i).locator("td").nth(1).inner_text() for i in range(3)]
    assert shown == sorted(shown, reverse=True)
    _shot(page, stack, "cohort")


def test_participant_page_draws_score_threshold_and_trajectories(stack: dict, page: object) -> None:
    pid = _topic(stack["settings"], "events.anomaly")[0]["participant"]
    page.goto(f"{stack['url']}/p/{pid}")
    page.wait_for_selector("#fig .main-svg")
    names = page.evaluate("document.getElementById('fig').data.map(t => t.name)")
    assert "Daily anomaly score" in names and "Personal threshold τ" in names and "Anomaly event" in names
    assert len([n for n in names if n not in ("Daily anomaly score", "Personal threshold τ", "Anomaly event",
                                                "Step-up (well-being drop)")]) >= 4  # behaviour trajectories
    # The score and threshold lines are drawn as SVG paths with geometry.
    drawn = page.evaluate("[...document.querySelectorAll('#fig .scatterlayer .trace')].slice(0, 2)"
                          ".map(t => (t.querySelector('path.js-line') || {getAttribute: () => ''}).getAttribute('d') || '')")
    assert len(drawn) == 2 and all(len(d) > 20 for d in drawn), drawn
    # The calibrating period is shaded.
    assert page.locator("#fig .shapelayer path").count() >= 1
    # Every anomaly has contributors in words, and a link to its raw numbers.
    card = page.locator(".card.anomaly").first
    assert card.locator(".contrib li").count() >= 1
    href = card.locator("a", has_text="raw numbers").get_attribute("href")
    _shot(page, stack, "participant")
    page.goto(stack["url"] + href)
    assert page.locator("text=Anomaly contributors").count() == 1


def test_new_anomaly_appears_live_and_ack_lands_on_the_topic(stack: dict, page: object) -> None:
    settings = stack["settings"]
    page.goto(f"{stack['url']}/inbox")
    page.wait_for_selector("#inbox tbody tr")
    page.wait_for_selector("#live:not(.off)")
    page.evaluate("window.__noReload = 1")
    eid = str(uuid.uuid4())
    ev = AnomalyEvent(participant="p002", event_id=eid, day="2024-02-09", score=9.9, threshold=5.0,
                      contributors=[Contributor(feature="call_n", z=3.0)], model="test")
    prod = producer(settings)
    t0 = time.monotonic()
    prod.produce(settings.topic("events.anomaly"), key=b"p002", value=encode(ev))
    prod.flush(10)
    row = page.locator(f'tr[data-event-id="{eid}"]')
    row.wait_for(timeout=5000)
    assert time.monotonic() - t0 < 5.0
    assert page.evaluate("window.__noReload") == 1  # no reload happened
    assert "p002" in row.inner_text() and "Anomaly" in row.inner_text()
    page.fill("#by", "Dr Test")
    row.locator("input[name=note]").fill("phoned, follow-up booked")
    row.locator("button", has_text="Acknowledge").click()
    row.locator(".ackd").wait_for(timeout=5000)
    _shot(page, stack, "inbox")
    acks = [a for a in _topic(settings, "events.ack") if a["event_id"] == eid]
    assert len(acks) == 1
    assert acks[0]["participant"] == "p002" and acks[0]["note"] == "phoned, follow-up booked" and acks[0]["by"] == "Dr Test"
    # The ack comes back through the topic into the view (shared with every instance).
    deadline = time.monotonic() + 5
    while stack["dash"].view.people["p002"].alerts[eid]["ack"] is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert stack["dash"].view.people["p002"].alerts[eid]["ack"]["note"] == "phoned, follow-up booked"


def _status(url: str, headers: dict[str, str] | None = None) -> int:
    req = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=5) as resp:
            return resp.status
    except urllib.error.HTTPError as exc:
        return exc.code


def test_every_route_needs_the_token(stack: dict) -> None:
    url = stack["url"]
    for path in ("/", "/inbox", "/p/p001", "/stream", "/api/cohort", "/static/plotly.min.js", "/static/dashboard.js"):
        assert _status(url + path) == 401, path
        assert _status(url + path, {"Authorization": "Bearer wrong-token"}) == 401, path
        assert _status(url + path + "?token=wrong") == 401, path
    assert _status(url + "/api/cohort", {"Authorization": f"Bearer {TOKEN}"}) == 200
    # The stream opens with the token (read only the headers).
    req = urllib.request.Request(url + "/stream", headers={"Authorization": f"Bearer {TOKEN}"})
    with urllib.request.urlopen(req, timeout=5) as resp:
        assert resp.status == 200 and resp.headers["content-type"].startswith("text/event-stream")


def test_a_restarted_instance_rebuilds_the_same_view_with_the_shared_acks(stack: dict) -> None:
    settings, first = stack["settings"], stack["dash"]
    alert = first.view.inbox(kind="anomaly")[-1]
    body = json.dumps({"event_id": alert["event_id"], "participant": alert["participant"], "by": "RN",
                       "note": "seen"}).encode()
    req = urllib.request.Request(stack["url"] + "/api/ack", data=body, method="POST",
                                 headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as resp:
        assert resp.status == 200
    deadline = time.monotonic() + 5
    while first.view.people[alert["participant"]].alerts[alert["event_id"]]["ack"] is None:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    second = Dashboard(settings, token=TOKEN, clock="data")
    second.start()
    try:
        now = first.view.data_now
        assert second.view.data_now == now
        assert second.view.cohort(now) == first.view.cohort(now)
        assert second.view.inbox() == first.view.inbox()
        assert second.view.people[alert["participant"]].alerts[alert["event_id"]]["ack"]["note"] == "seen"
    finally:
        second.stop()
    # Pages never carry raw coordinates: the dashboard reads only derived topics.
    lat = json.loads((stack["tmp"] / "cohort" / "location.jsonl").open().readline())["lat"]
    html = urllib.request.urlopen(urllib.request.Request(
        stack["url"] + f"/api/participant/{alert['participant']}", headers={"Authorization": f"Bearer {TOKEN}"})).read()
    assert str(lat).encode() not in html
