"""Settings: durability cannot be weakened by a typo, and the cookie key is whole and shared."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from web.config import Config


@pytest.mark.parametrize("word", ["FUL", "yes", "1", ""])
def test_an_unknown_synchronous_setting_is_refused(word: str) -> None:
    with pytest.raises(ValueError, match="FULL, EXTRA, NORMAL or OFF"):
        Config(synchronous=word)


def test_the_environment_sets_durability(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ML_CABINET_SYNCHRONOUS", "normal")
    assert Config.from_env().synchronous == "NORMAL"
    monkeypatch.setenv("ML_CABINET_SYNCHRONOUS", "fast")
    with pytest.raises(ValueError):
        Config.from_env()


def test_processes_starting_together_agree_on_one_whole_key(tmp_path: Path) -> None:
    config = Config(db_path=tmp_path / "cabinet.db")
    with ThreadPoolExecutor(8) as pool:
        keys = set(pool.map(lambda _: config.session_key(), range(32)))
    assert len(keys) == 1
    (key,) = keys
    assert len(key) == 32 and key != bytes(32)
    assert (tmp_path / "cabinet.db.session-key").stat().st_mode & 0o777 == 0o600
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cabinet.db.session-key"]
    assert config.session_key() == key  # a restart keeps everyone logged in


def test_a_damaged_key_file_is_refused_not_padded_with_zeros(tmp_path: Path) -> None:
    (tmp_path / "cabinet.db.session-key").write_bytes(b"")
    with pytest.raises(RuntimeError, match="damaged"):
        Config(db_path=tmp_path / "cabinet.db").session_key()


def test_without_a_database_url_the_ledger_stays_on_the_file(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ML_CABINET_DATABASE_URL", raising=False)
    config = Config.from_env(db_path=Path("here.db"))
    assert config.database_url is None and config.store_at == Path("here.db")


def test_a_database_url_from_the_environment_selects_postgresql(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ML_CABINET_DATABASE_URL", "postgresql://mlc@db.internal/ml_cabinet")
    monkeypatch.setenv("ML_CABINET_LEASE_S", "2.5")
    monkeypatch.setenv("ML_CABINET_SWEEP_S", "0.5")
    config = Config.from_env()
    assert config.store_at == "postgresql://mlc@db.internal/ml_cabinet"
    assert (config.lease_s, config.sweep_s) == (2.5, 0.5)


@pytest.mark.parametrize("url", ["mysql://x/y", "ml_cabinet.db", "postgresql:/x"])
def test_a_url_that_is_not_postgresql_is_refused(url: str) -> None:
    with pytest.raises(ValueError, match="postgresql://"):
        Config(database_url=url)


@pytest.mark.parametrize("seconds", [0, -1, float("nan"), float("inf"), 10_000])
def test_a_lease_or_sweep_that_makes_no_sense_is_refused(seconds: float) -> None:
    with pytest.raises(ValueError, match="seconds"):
        Config(lease_s=seconds)
    with pytest.raises(ValueError, match="seconds"):
        Config(sweep_s=seconds)
    with pytest.raises(ValueError, match="seconds"):
        Config(stale_hold_s=seconds)


def test_the_checkpoint_cadence_and_key_file_come_from_the_environment(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    assert Config(db_path=tmp_path / "c.db").signing_key_path == tmp_path / "c.db.signing-key"
    monkeypatch.setenv("ML_CABINET_CHECKPOINT_EVERY", "50")
    monkeypatch.setenv("ML_CABINET_CHECKPOINT_SECONDS", "2.5")
    monkeypatch.setenv("ML_CABINET_SIGNING_KEY_FILE", str(tmp_path / "keys" / "k.pem"))
    config = Config.from_env()
    assert (config.checkpoint_every, config.checkpoint_seconds) == (50, 2.5)
    assert config.signing_key_path == tmp_path / "keys" / "k.pem"
    for bad in ({"checkpoint_every": 0}, {"checkpoint_seconds": 0.0}):
        with pytest.raises(ValueError, match="CHECKPOINT"):
            Config(**bad)  # type: ignore[arg-type]


def test_processes_starting_together_agree_on_one_signing_key(tmp_path: Path) -> None:
    from ledger.checkpoints import Signer

    with ThreadPoolExecutor(8) as pool:
        ids = set(pool.map(lambda _: Signer.from_file(tmp_path / "k").key_id, range(16)))
    assert len(ids) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["k"]  # no drafts left behind
