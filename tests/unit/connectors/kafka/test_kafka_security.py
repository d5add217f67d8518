"""Kafka/Schema Registry security settings: one source for every client, secrets never shown."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from phenoflow.core.config import load_settings, settings_env

PASSWORD = "s3cr3t-Pa55word-xyz"
SECURE_ENV = {
    "PHENOFLOW_KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT",
    "PHENOFLOW_KAFKA_SASL_MECHANISM": "PLAIN",
    "PHENOFLOW_KAFKA_SASL_USERNAME": "study-bot",
    "PHENOFLOW_KAFKA_SASL_PASSWORD": PASSWORD,
    "PHENOFLOW_SCHEMA_REGISTRY_URL": "https://registry.example:8081",
    "PHENOFLOW_SCHEMA_REGISTRY_AUTH": f"study-bot:{PASSWORD}",
    "PHENOFLOW_KAFKA_SSL_CA_LOCATION": "/etc/ssl/ca.pem",
}


def test_security_settings_reach_kafka_and_registry_configs_and_stay_out_of_repr(monkeypatch) -> None:
    for k, v in SECURE_ENV.items():
        monkeypatch.setenv(k, v)
    s = load_settings(bootstrap="kafka:9093")
    conf = s.kafka_config()
    assert conf["security.protocol"] == "SASL_PLAINTEXT" and conf["sasl.mechanism"] == "PLAIN"
    assert conf["sasl.username"] == "study-bot" and conf["sasl.password"] == PASSWORD
    assert conf["ssl.ca.location"] == "/etc/ssl/ca.pem" and conf["bootstrap.servers"] == "kafka:9093"
    assert s.registry_config() == {"url": "https://registry.example:8081", "basic.auth.user.info": f"study-bot:{PASSWORD}",
                                   "ssl.ca.location": "/etc/ssl/ca.pem"}
    assert PASSWORD not in repr(s) and PASSWORD not in str(s)
    # Flow processes get the same settings through the environment.
    assert settings_env(s)["PHENOFLOW_KAFKA_SASL_PASSWORD"] == PASSWORD
    # Unset settings add nothing (a plain cluster keeps librdkafka's defaults).
    monkeypatch.delenv("PHENOFLOW_KAFKA_SECURITY_PROTOCOL")
    monkeypatch.delenv("PHENOFLOW_KAFKA_SASL_MECHANISM")
    plain = load_settings(kafka_sasl_username="", kafka_sasl_password="", kafka_ssl_ca_location="")
    assert set(plain.kafka_config()) == {"bootstrap.servers"}


def test_unreachable_broker_error_does_not_show_the_password(tmp_path: Path) -> None:
    env = {**os.environ, **SECURE_ENV}
    res = subprocess.run([sys.executable, "-m", "phenoflow", "subscribe", "raw.screen", "--bootstrap", "127.0.0.1:9",
                          "--timeout", "1"], env=env, capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert res.returncode != 0
    assert "no Kafka broker answers at 127.0.0.1:9" in res.stderr and "Traceback" not in res.stderr
    assert PASSWORD not in res.stderr + res.stdout


def test_generated_pseudonym_key_lives_beside_the_config(tmp_path: Path, monkeypatch) -> None:
    conf = tmp_path / "study" / "study.toml"
    conf.parent.mkdir()
    conf.write_text('topic_prefix = "s."\n')
    monkeypatch.delenv("PHENOFLOW_PSEUDONYM_KEY_FILE", raising=False)
    s = load_settings(conf)
    assert Path(s.pseudonym_key_file) == (tmp_path / "study" / ".phenoflow" / "pseudonym.key").absolute()
    # Loading again from the environment it produced (as a flow process does) gives the same file.
    for k, v in settings_env(s).items():
        monkeypatch.setenv(k, v)
    monkeypatch.setenv("PHENOFLOW_CONFIG", str(conf))
    assert load_settings().pseudonym_key_file == s.pseudonym_key_file
