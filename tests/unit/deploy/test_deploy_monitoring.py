"""deploy/: Prometheus config and alerts, the Grafana dashboard, and the metric names they use.

promtool (Debian's `prometheus` package) checks the config, the alert rules
with their unit tests and every PromQL query of the dashboard; the metric
names are checked against phenoflow.core.telemetry and against what a real Bytewax
dataflow serves on its API port.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any, Iterator

import pytest
import yaml

from phenoflow.core import telemetry as metrics

DEPLOY = Path(__file__).resolve().parents[3] / "deploy"


def _promtool() -> str:
    exe = shutil.which("promtool")
    if exe is None:
        pytest.fail("promtool is needed for this test: apt-get install -y prometheus (Debian's package ships promtool)")
    return exe


def _compose() -> dict[str, Any]:
    return yaml.safe_load((DEPLOY / "compose.yaml").read_text())


# ---------------------------------------------------------------- Prometheus


def test_prometheus_config_and_alert_rules_pass_promtool() -> None:
    exe = _promtool()
    cwd = DEPLOY / "prometheus"
    for args in (["check", "config", "prometheus.yml"], ["check", "rules", "rules.yml"],
                 ["test", "rules", "rules.test.yml"]):
        res = subprocess.run([exe, *args], cwd=cwd, capture_output=True, text=True, timeout=60)
        assert res.returncode == 0, res.stdout + res.stderr


def test_prometheus_scrapes_the_ports_compose_publishes() -> None:
    config = yaml.safe_load((DEPLOY / "prometheus/prometheus.yml").read_text())
    jobs = {j["job_name"]: j for j in config["scrape_configs"]}
    env = _compose()["services"]["phenoflow"]["environment"]
    assert jobs["phenoflow"]["static_configs"] == [{"targets": [f"phenoflow:{env['PHENOFLOW_METRICS_PORT']}"]}]
    assert jobs["bytewax"]["static_configs"] == [{"targets": ["phenoflow:3030"]}]


# ---------------------------------------------------------------- metrics and Grafana


def _phenoflow_metrics() -> list[Any]:
    from prometheus_client.metrics import MetricWrapperBase

    return [v for v in vars(metrics).values() if isinstance(v, MetricWrapperBase)]


def _exposed_names() -> set[str]:
    """Sample names phenoflow's /metrics exposes, from the metric objects' types."""
    suffixes = {"counter": ["_total"], "gauge": [""], "histogram": ["_bucket", "_sum", "_count"]}
    names = set()
    for metric in _phenoflow_metrics():
        for family in metric.describe():
            names |= {family.name + s for s in suffixes[family.type]}
    return names


@pytest.fixture(scope="module")
def bytewax_names(tmp_path_factory: pytest.TempPathFactory) -> Iterator[set[str]]:
    """Sample names of Bytewax's own /metrics (port 3030 API), scraped from a real small dataflow."""
    tmp = tmp_path_factory.mktemp("bytewax")
    gate = tmp / "done"
    (tmp / "tinyflow.py").write_text(f"""
import time
from pathlib import Path
import bytewax.operators as op
from bytewax.dataflow import Dataflow
from bytewax.testing import TestingSource
from bytewax.connectors.stdio import StdOutSink

def hold(x):
    # keep the process (and its metrics endpoint) up until the test has scraped it
    deadline = time.time() + 30
    while x == 19 and not Path({str(gate)!r}).exists() and time.time() < deadline:
        time.sleep(0.05)
    return x

flow = Dataflow("tiny")
s = op.input("inp", flow, TestingSource(list(range(20)), batch_size=4))
s = op.map("hold", s, hold)
k = op.key_on("key", s, lambda x: str(x % 2))
total = op.stateful_map("total", k, lambda st, x: ((st or 0) + x, (st or 0) + x))
op.output("out", total, StdOutSink())
""")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "BYTEWAX_DATAFLOW_API_ENABLED": "true", "BYTEWAX_DATAFLOW_API_PORT": str(port)}
    proc = subprocess.Popen([sys.executable, "-m", "bytewax.run", "tinyflow:flow"], cwd=tmp, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    names: set[str] = set()
    try:
        deadline = time.time() + 20
        while time.time() < deadline and not {"bytewax_item_out_count_total",
                                               "bytewax_stateful_batch_on_batch_duration_seconds_bucket",
                                               "bytewax_out_part_write_batch_duration_seconds_bucket"} <= names:
            time.sleep(0.2)
            try:
                text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2).read().decode()
            except OSError:
                continue
            names = {line.split("{")[0].split(" ")[0] for line in text.splitlines() if line and not line.startswith("#")}
        yield names
    finally:
        gate.touch()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _dashboard() -> dict[str, Any]:
    return json.loads((DEPLOY / "grafana/dashboards/phenoflow.json").read_text())


def _exprs(dash: dict[str, Any]) -> list[str]:
    return [t["expr"] for p in dash["panels"] for t in p.get("targets", [])]


def test_dashboard_layout_and_datasource() -> None:
    dash = _dashboard()
    assert dash["uid"] == "phenoflow" and isinstance(dash["schemaVersion"], int)
    ids = [p["id"] for p in dash["panels"]]
    assert len(ids) == len(set(ids))
    (ds,) = yaml.safe_load((DEPLOY / "grafana/provisioning/datasources/prometheus.yaml").read_text())["datasources"]
    cells: set[tuple[int, int]] = set()
    for p in dash["panels"]:
        g = p["gridPos"]
        assert g["x"] >= 0 and g["w"] > 0 and g["x"] + g["w"] <= 24, p["title"]
        mine = {(x, y) for x in range(g["x"], g["x"] + g["w"]) for y in range(g["y"], g["y"] + g["h"])}
        assert not mine & cells, f"panel {p['title']!r} overlaps another"
        cells |= mine
        if p["type"] == "row":
            continue
        assert p["datasource"] == {"type": ds["type"], "uid": ds["uid"]}
        assert p["targets"] and all(t["datasource"]["uid"] == ds["uid"] and t["expr"] for t in p["targets"])
        assert len({t["refId"] for t in p["targets"]}) == len(p["targets"])


def test_dashboard_queries_are_valid_promql() -> None:
    exe = _promtool()
    exprs = [e.replace("$__rate_interval", "1m") for e in _exprs(_dashboard())]
    rules = {"groups": [{"name": "dashboard", "rules": [{"record": f"dashboard:q{i}", "expr": e}
                                                          for i, e in enumerate(exprs)]}]}
    with tempfile.NamedTemporaryFile("w", suffix=".yml") as fh:
        yaml.safe_dump(rules, fh)
        fh.flush()
        res = subprocess.run([exe, "check", "rules", fh.name], capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stdout + res.stderr
    assert f"SUCCESS: {len(exprs)} rules found" in res.stdout


_NAME = re.compile(r"\b((?:phenoflow|bytewax)_[a-z0-9_]+|up)\b")


def test_dashboard_and_alerts_use_metrics_that_exist(bytewax_names: set[str]) -> None:
    exposed = _exposed_names()
    assert {"phenoflow_messages_in_total", "phenoflow_scoring_latency_seconds_bucket",
            "phenoflow_participants_calibrating", "phenoflow_consumer_lag"} <= exposed
    known = exposed | bytewax_names | {"up"}
    rules = yaml.safe_load((DEPLOY / "prometheus/rules.yml").read_text())
    alert_exprs = [r["expr"] for g in rules["groups"] for r in g["rules"]]
    used = {n for e in _exprs(_dashboard()) + alert_exprs for n in _NAME.findall(e)}
    assert used <= known, f"unknown metric(s): {sorted(used - known)}"
    # Every phenoflow metric has a panel.
    shown = {n for e in _exprs(_dashboard()) for n in _NAME.findall(e)}
    for metric in _phenoflow_metrics():
        (family,) = metric.describe()
        assert any(n.startswith(family.name) for n in shown), f"{family.name} has no panel"


def test_bytewax_job_keeps_only_what_the_phenoflow_port_lacks(bytewax_names: set[str]) -> None:
    config = yaml.safe_load((DEPLOY / "prometheus/prometheus.yml").read_text())
    (job,) = [j for j in config["scrape_configs"] if j["job_name"] == "bytewax"]
    (relabel,) = job["metric_relabel_configs"]
    assert relabel["action"] == "keep"
    keep = re.compile(f"^(?:{relabel['regex']})$")  # Prometheus anchors relabel regexes
    rust_only = {n for n in bytewax_names if n.startswith("bytewax_")} - _exposed_names()
    assert rust_only and all(keep.match(n) for n in rust_only)
    # The Python registry, served on both ports, is taken from the phenoflow job only.
    assert not any(keep.match(n) for n in _exposed_names())
    assert not any(keep.match(n) for n in bytewax_names if n.startswith(("python_", "process_")))
