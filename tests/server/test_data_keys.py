"""The service's keys: created once under the data directory with owner-only permissions, read
back the same by every later start, or given as a hex setting; bad ones stop the start."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from server.config import Config, ConfigError
from server.data_keys import data_key


def test_a_key_file_is_created_once_owner_only_and_read_back(tmp_path: Path) -> None:
    config = Config(data_dir=tmp_path / "data")
    first = data_key(config, "secrets", "")
    path = tmp_path / "data" / "keys" / "secrets.key"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert len(first) == 32
    assert data_key(config, "secrets", "") == first
    assert data_key(config, "audit", "") != first


def test_a_key_setting_wins_and_a_bad_one_is_refused(tmp_path: Path) -> None:
    config = Config(data_dir=tmp_path / "data")
    assert data_key(config, "secrets", "ab" * 32) == bytes([0xAB] * 32)
    assert not (tmp_path / "data" / "keys" / "secrets.key").exists()
    for bad in ("zz" * 32, "ab" * 16):
        with pytest.raises(ConfigError):
            data_key(config, "secrets", bad)
    (tmp_path / "data" / "keys").mkdir(parents=True)
    (tmp_path / "data" / "keys" / "secrets.key").write_text("not a key\n")
    with pytest.raises(ConfigError, match="not a key"):
        data_key(config, "secrets", "")


def test_processes_starting_at_once_agree_on_one_key(tmp_path: Path) -> None:
    from concurrent.futures import ProcessPoolExecutor

    config = Config(data_dir=tmp_path / "data")
    with ProcessPoolExecutor(4) as pool:
        keys = list(pool.map(data_key, [config] * 8, ["secrets"] * 8, [""] * 8))
    assert len(set(keys)) == 1
    assert [p.name for p in (tmp_path / "data" / "keys").iterdir()] == ["secrets.key"]


def test_the_notice_signing_key_is_made_once_or_given(tmp_path: Path) -> None:
    from dataclasses import replace

    from server.data_keys import notice_signer

    config = Config(data_dir=tmp_path / "data")
    first = notice_signer(config)
    path = tmp_path / "data" / "keys" / "notice.key"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    # Every later start (and every process on the data directory) signs with the same key.
    assert notice_signer(config).public_pem() == first.public_pem()
    assert first.public_pem().startswith("-----BEGIN PUBLIC KEY-----")
    given = notice_signer(replace(config, notice_key="cd" * 32))
    assert given.key_id != first.key_id
    assert notice_signer(replace(config, notice_key="cd" * 32)).key_id == given.key_id
    with pytest.raises(ConfigError):
        notice_signer(replace(config, notice_key="cd" * 16))
