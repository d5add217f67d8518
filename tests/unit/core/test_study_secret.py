"""The study's secret from the settings: configured wins, else one generated key file, created once, mode 0600."""

from __future__ import annotations

import stat
import threading
from pathlib import Path

import pytest

from phenoflow.core.config import Settings
from phenoflow.core.errors import UserError
from phenoflow.core.pseudonym import load_or_create_secret, study_secret


def test_configured_secret_wins_and_no_file_is_written(tmp_path: Path) -> None:
    key_file = tmp_path / "k" / "pseudonym.key"
    settings = Settings(pseudonym_secret="configured-secret", pseudonym_key_file=str(key_file))
    assert study_secret(settings) == (b"configured-secret", False)
    assert not key_file.parent.exists()


def test_generated_key_file_is_private_and_read_back(tmp_path: Path) -> None:
    key_file = tmp_path / "study" / "pseudonym.key"
    settings = Settings(pseudonym_key_file=str(key_file))
    key, created = study_secret(settings)
    assert created and len(key) == 64 and key_file.read_text() == key.decode() + "\n"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert study_secret(settings) == (key, False)  # the next run, and every flow process, reads the same key
    assert sorted(p.name for p in key_file.parent.iterdir()) == ["pseudonym.key"]  # no temporary file left


def test_processes_starting_together_agree_on_one_key(tmp_path: Path) -> None:
    key_file = tmp_path / "pseudonym.key"
    start = threading.Barrier(12)
    got: list[tuple[bytes, bool]] = []

    def one() -> None:
        start.wait()
        got.append(load_or_create_secret("", key_file))

    threads = [threading.Thread(target=one) for _ in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len({key for key, _ in got}) == 1 and sum(created for _, created in got) == 1
    assert key_file.read_text().strip().encode() == got[0][0]


def test_empty_key_file_is_one_line(tmp_path: Path) -> None:
    key_file = tmp_path / "pseudonym.key"
    key_file.write_text("\n")
    with pytest.raises(UserError) as info:
        load_or_create_secret("", key_file)
    assert "\n" not in str(info.value) and str(key_file) in str(info.value)
