"""Settings precedence: defaults < TOML file < PHENOFLOW_* environment < flags; kafka_options parsing."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from phenoflow.core.config import Settings, load_settings
from phenoflow.core.errors import UserError

TOML = 'bootstrap = "file-host:1"\ntopic_prefix = "file."\npartitions = 8\nallowed_lateness_s = 60\n'


@pytest.fixture(autouse=True)
def _no_phenoflow_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in list(os.environ):
        if key.startswith("PHENOFLOW_"):
            monkeypatch.delenv(key)


def test_each_layer_overrides_the_one_below(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = tmp_path / "phenoflow.toml"
    cfg.write_text(TOML)
    assert load_settings() == Settings()
    from_file = load_settings(cfg)
    assert (from_file.bootstrap, from_file.topic_prefix, from_file.partitions, from_file.allowed_lateness_s) == (
        "file-host:1", "file.", 8, 60.0)
    assert from_file.idle_timeout_s == Settings().idle_timeout_s  # not in the file: default
    monkeypatch.setenv("PHENOFLOW_PARTITIONS", "6")
    monkeypatch.setenv("PHENOFLOW_TOPIC_PREFIX", "env.")
    from_env = load_settings(cfg)
    assert (from_env.bootstrap, from_env.topic_prefix, from_env.partitions) == ("file-host:1", "env.", 6)
    flagged = load_settings(cfg, bootstrap="flag-host:2", topic_prefix=None)  # None = flag not given
    assert (flagged.bootstrap, flagged.topic_prefix, flagged.partitions) == ("flag-host:2", "env.", 6)
    # The file can also come from PHENOFLOW_CONFIG.
    monkeypatch.setenv("PHENOFLOW_CONFIG", str(cfg))
    assert load_settings().bootstrap == "file-host:1"


@pytest.mark.parametrize(
    ("text", "needle"),
    [("partitions = 'many'\n", "not a valid int"), ("bootstrapp = 'x'\n", "unknown key 'bootstrapp'"),
     ("bootstrap = \n", "not valid TOML")],
)
def test_bad_config_file_is_a_user_error(tmp_path: Path, text: str, needle: str) -> None:
    cfg = tmp_path / "bad.toml"
    cfg.write_text(text)
    with pytest.raises(UserError, match=needle):
        load_settings(cfg)


def test_kafka_options_are_parsed_into_librdkafka_settings() -> None:
    s = Settings(bootstrap="b:1", kafka_options="security.protocol=SSL, ssl.ca.location = /ca.pem,,")
    assert s.kafka_config() == {"bootstrap.servers": "b:1", "security.protocol": "SSL", "ssl.ca.location": "/ca.pem"}
    with pytest.raises(UserError, match="not key=value"):
        Settings(kafka_options="security.protocol").kafka_config()


def test_cli_flag_beats_environment_and_file(tmp_path: Path) -> None:
    """Through the CLI: the config file names one closed port, the env another, the flag a third."""
    cfg = tmp_path / "c.toml"
    cfg.write_text('bootstrap = "127.0.0.1:1"\n')
    env = {k: v for k, v in os.environ.items() if not k.startswith("PHENOFLOW_")}
    cohort = tmp_path / "cohort"
    cohort.mkdir()
    (cohort / "screen.jsonl").write_text('{"participant": "p0", "ts": 1700000000.0, "state": "on"}\n')

    def named_broker(*args: str, **extra: str) -> str:
        res = subprocess.run([sys.executable, "-m", "phenoflow", "replay", str(cohort), "--config", str(cfg), *args],
                             env={**env, **extra}, capture_output=True, text=True, timeout=60)
        assert res.returncode != 0 and "Traceback" not in res.stderr, res.stderr
        return res.stderr

    # One run (each waits for the unreachable broker): the flag wins over env and file.
    message = named_broker("--bootstrap", "127.0.0.1:3", PHENOFLOW_BOOTSTRAP="127.0.0.1:2")
    assert "127.0.0.1:3" in message and "127.0.0.1:2" not in message and "127.0.0.1:1" not in message


def test_count_columns_layers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """count_columns (``phenoflow rhythm --count-columns``): default < file < env < flag, one name everywhere."""
    cfg = tmp_path / "c.toml"
    cfg.write_text('count_columns = "call_n,sms_n"\n')
    assert load_settings().count_columns == ""  # default: every column gets IS/IV
    assert load_settings(cfg).count_columns == "call_n,sms_n"
    cfg_list = tmp_path / "list.toml"
    cfg_list.write_text('count_columns = ["call_n", "sms_n"]\n')  # a TOML array means the same
    assert load_settings(cfg_list).count_columns == "call_n,sms_n"
    monkeypatch.setenv("PHENOFLOW_COUNT_COLUMNS", "screen_on_s")
    assert load_settings(cfg).count_columns == "screen_on_s"
    assert load_settings(cfg, count_columns=None).count_columns == "screen_on_s"  # flag not given
    assert load_settings(cfg, count_columns="distance_m").count_columns == "distance_m"
    assert load_settings(cfg, count_columns="").count_columns == ""  # an empty flag opts nothing out
    bad = tmp_path / "bad.toml"
    bad.write_text("count_columns = [1, 2]\n")
    with pytest.raises(UserError, match="count_columns=.* is not a valid str"):
        load_settings(bad)
