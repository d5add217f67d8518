"""Progress of a running dataflow, read from its Prometheus endpoint (``phenoflow run``)."""

from __future__ import annotations

import re
import urllib.request
from collections import defaultdict

__all__ = ["scrape", "in_process", "parse", "describe"]

_SAMPLE = re.compile(r'^(phenoflow_\w+_total)\{([^}]*)\} (\S+)$', re.M)
_TOPIC = re.compile(r'(?:^|,)topic="([^"]*)"')


def scrape(port: int, timeout: float = 1.0) -> dict[str, dict[str, float]] | None:
    """Counters by metric then topic from ``127.0.0.1:port/metrics``; None when not reachable yet."""
    try:
        text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=timeout).read().decode()
    except OSError:
        return None
    return parse(text)


def in_process() -> dict[str, dict[str, float]]:
    """The same counters from this process's own registry (a dataflow run in-process)."""
    from prometheus_client import REGISTRY, generate_latest

    return parse(generate_latest(REGISTRY).decode())


def parse(text: str) -> dict[str, dict[str, float]]:
    """Prometheus text format → phenoflow counter totals by metric, then topic."""
    out: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    for name, labels, value in _SAMPLE.findall(text):
        topic = _TOPIC.search(labels)
        out[name][topic.group(1) if topic else ""] += float(value)
    return out


def describe(counters: dict[str, dict[str, float]] | None) -> str:
    """One status line: messages in, records out per topic, dead letters."""
    if counters is None:
        return "starting the dataflow…"
    n_in = sum(counters.get("phenoflow_messages_in_total", {}).values())
    outs = counters.get("phenoflow_messages_out_total", {})
    dead = sum(counters.get("phenoflow_dead_letters_total", {}).values())
    shown = ", ".join(f"{t} {int(v):,}" for t, v in sorted(outs.items()) if t != "deadletter")
    return f"{int(n_in):,} messages in → {shown or 'no output yet'}; {int(dead):,} dead letters"
