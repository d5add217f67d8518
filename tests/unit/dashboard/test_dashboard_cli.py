"""Expected failures of `phenoflow dashboard`: one line naming the cause and the fix, no traceback."""

from __future__ import annotations

import os
import socket
import subprocess
import sys

import pytest

from phenoflow.core.config import load_settings
from phenoflow.core.errors import UserError
from phenoflow.dashboard.server import check_port, resolve_token
from phenoflow.dashboard.web import session_value


def _cli(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("PHENOFLOW_")}
    return subprocess.run([sys.executable, "-m", "phenoflow", "dashboard", *args], capture_output=True, text=True,
                          env={**clean, **env}, timeout=60)


def test_no_token_is_a_one_line_error_naming_the_fix() -> None:
    res = _cli("--bootstrap", "127.0.0.1:1")
    assert res.returncode == 2
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and "PHENOFLOW_DASHBOARD_TOKEN" in lines[0] and "--no-auth" in lines[0]


def test_unreachable_broker_is_a_one_line_error_and_the_token_is_not_printed() -> None:
    res = _cli("--bootstrap", "127.0.0.1:1", "--port", "0", PHENOFLOW_DASHBOARD_TOKEN="s3cret-token-xyz")
    assert res.returncode == 2 and "Traceback" not in res.stderr
    assert "no Kafka broker answers at 127.0.0.1:1" in res.stderr
    assert "s3cret-token-xyz" not in res.stderr + res.stdout


def test_token_rules_and_port_check() -> None:
    with pytest.raises(UserError, match="PHENOFLOW_DASHBOARD_TOKEN"):
        resolve_token(load_settings(dashboard_token=""), no_auth=False)
    with pytest.raises(UserError, match="shorter than 8"):
        resolve_token(load_settings(dashboard_token="abc"), no_auth=False)
    assert resolve_token(load_settings(dashboard_token="abcdefgh"), no_auth=False) == "abcdefgh"
    assert resolve_token(load_settings(dashboard_token=""), no_auth=True) is None
    # The session cookie is derived from the token but does not contain it.
    assert "abcdefgh" not in session_value("abcdefgh") and session_value("abcdefgh") != session_value("abcdefgi")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        with pytest.raises(UserError, match="is taken"):
            check_port("127.0.0.1", s.getsockname()[1])
