"""Settings, frozen, from command-line arguments and ML_CABINET_* environment variables."""

from __future__ import annotations

import contextlib
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

# Where a model joins: one manifest (JSON) and its ONNX artifact per model (see ml/manifest.py).
DEFAULT_MODELS_DIR = Path(__file__).resolve().parent.parent / "models"


@dataclass(frozen=True, kw_only=True)
class Config:
    db_path: Path = Path("ml_cabinet.db")
    models_dir: Path = DEFAULT_MODELS_DIR
    host: str = "127.0.0.1"
    port: int = 8080
    # Cookies get the Secure flag; turn on when the service sits behind https.
    secure_cookies: bool = False
    # 2 MiB covers the largest valid JSON request with room to spare.
    max_body_bytes: int = 2 * 1024 * 1024
    max_upload_bytes: int = 1024 * 1024
    synchronous: str = "FULL"
    cheap_password_hashing: bool = False
    verify_on_start: bool = True
    # A postgresql:// URL selects PostgreSQL; None keeps the SQLite file `db_path`.
    database_url: str | None = None
    # On PostgreSQL, a process whose lease is older than this is dead; it renews every third.
    lease_s: float = 15.0
    # How often each process looks for holds of dead processes, on both stores.
    sweep_s: float = 30.0
    # A hold of this process whose task is no longer running (its settle failed, say during
    # an outage) is released once it is this old; the margin covers a task about to start.
    stale_hold_s: float = 120.0
    # A signed checkpoint is sealed once this many events wait, or this many seconds after
    # the last one when any wait at all (issue 11).
    checkpoint_every: int = 1000
    checkpoint_seconds: float = 60.0
    # The Ed25519 key that signs checkpoints; None: beside the SQLite file. Never in the
    # database, also on PostgreSQL, where every process is given the same file.
    signing_key_file: Path | None = None
    # The background verifier re-walks the chain at this many rows a second; 0 turns it off.
    # 5,000 rows/s is about 5% of a core here; a 1M-event log is re-walked every ~200 s.
    verify_rate: int = 5_000
    # Pure, fast models (ModelSpec.one_transaction) charge in one write; False: all two-phase.
    one_transaction: bool = True
    # Operations (issue 13). /metrics answers only with this Bearer token, or on its own
    # port (bind it to the operator's network); with neither it is not served at all.
    metrics_token: str | None = None
    metrics_port: int | None = None
    log_format: str = "plain"  # or "json": one object per line
    # On SIGTERM/SIGINT requests in flight get this long to finish before they are cut off.
    shutdown_grace_s: float = 10.0
    # Processes that count login failures in memory apart (main.py: `--workers N` on SQLite);
    # each allows its share of a rule (web/throttle.py).
    login_share: int = 1

    def __post_init__(self) -> None:
        if self.database_url is not None and not self.database_url.startswith(
                ("postgresql://", "postgres://")):
            raise ValueError("ML_CABINET_DATABASE_URL must start with postgresql://")
        if not all(0 < s <= 3600 for s in (self.lease_s, self.sweep_s, self.stale_hold_s)):
            raise ValueError("ML_CABINET_LEASE_S, ML_CABINET_SWEEP_S and "
                             "ML_CABINET_STALE_HOLD_S are seconds in (0, 3600]")
        if self.checkpoint_every < 1 or not 0 < self.checkpoint_seconds <= 86_400:
            raise ValueError("ML_CABINET_CHECKPOINT_EVERY is at least 1 event and "
                             "ML_CABINET_CHECKPOINT_SECONDS in (0, 86400]")
        if not 0 <= self.verify_rate <= 10_000_000:
            raise ValueError("ML_CABINET_VERIFY_RATE is rows per second in [0, 10000000]")
        if self.log_format not in ("plain", "json"):
            raise ValueError("ML_CABINET_LOG_FORMAT is plain or json")
        if not 0 <= self.shutdown_grace_s <= 3600:
            raise ValueError("ML_CABINET_SHUTDOWN_GRACE_SECONDS is seconds in [0, 3600]")
        if self.metrics_token is not None and len(self.metrics_token) < 16:
            raise ValueError("ML_CABINET_METRICS_TOKEN must be at least 16 characters")
        # A typo must not quietly weaken durability: SQLite reads unknown words as NORMAL.
        if self.synchronous not in ("FULL", "EXTRA", "NORMAL", "OFF"):
            raise ValueError(f"ML_CABINET_SYNCHRONOUS must be FULL, EXTRA, NORMAL or OFF, "
                             f"not {self.synchronous!r}")

    @classmethod
    def from_env(cls, **overrides: object) -> Config:
        env = os.environ
        values: dict[str, object] = {
            "db_path": Path(env.get("ML_CABINET_DB", "ml_cabinet.db")),
            "models_dir": Path(env.get("ML_CABINET_MODELS_DIR", str(DEFAULT_MODELS_DIR))),
            "host": env.get("ML_CABINET_HOST", "127.0.0.1"),
            "port": int(env.get("ML_CABINET_PORT", "8080")),
            "secure_cookies": env.get("ML_CABINET_SECURE_COOKIES", "") == "1",
            "synchronous": env.get("ML_CABINET_SYNCHRONOUS", "FULL").upper(),
            "cheap_password_hashing": env.get("ML_CABINET_CHEAP_HASHING", "") == "1",
            "verify_on_start": env.get("ML_CABINET_VERIFY_ON_START", "1") != "0",
            "database_url": env.get("ML_CABINET_DATABASE_URL") or None,
            "lease_s": float(env.get("ML_CABINET_LEASE_S", "15")),
            "sweep_s": float(env.get("ML_CABINET_SWEEP_S", "30")),
            "stale_hold_s": float(env.get("ML_CABINET_STALE_HOLD_S", "120")),
            "checkpoint_every": int(env.get("ML_CABINET_CHECKPOINT_EVERY", "1000")),
            "checkpoint_seconds": float(env.get("ML_CABINET_CHECKPOINT_SECONDS", "60")),
            "signing_key_file": (Path(env["ML_CABINET_SIGNING_KEY_FILE"])
                                 if env.get("ML_CABINET_SIGNING_KEY_FILE") else None),
            "verify_rate": int(env.get("ML_CABINET_VERIFY_RATE", "5000")),
            "one_transaction": env.get("ML_CABINET_ONE_TRANSACTION", "1") != "0",
            "metrics_token": env.get("ML_CABINET_METRICS_TOKEN") or None,
            "metrics_port": (int(env["ML_CABINET_METRICS_PORT"])
                             if env.get("ML_CABINET_METRICS_PORT") else None),
            "log_format": env.get("ML_CABINET_LOG_FORMAT", "plain").lower(),
            "shutdown_grace_s": float(env.get("ML_CABINET_SHUTDOWN_GRACE_SECONDS", "10")),
        }
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)  # type: ignore[arg-type]

    @property
    def store_at(self) -> str | Path:
        """Where the ledger lives: the PostgreSQL URL when there is one, else the file."""
        return self.database_url or self.db_path

    @property
    def signing_key_path(self) -> Path:
        return self.signing_key_file or Path(f"{self.db_path}.signing-key")

    def session_key(self) -> bytes:
        """The cookie encryption key, kept beside the database so restarts keep sessions.

        Created once with O_EXCL, so two processes starting together agree on one key.
        """
        path = Path(f"{self.db_path}.session-key")
        if not path.exists():
            # Written whole to a private name, then linked into place: a reader never sees
            # a half-written key, and link() lets exactly one of two racing processes win.
            draft = path.with_name(f"{path.name}.{secrets.token_hex(8)}.tmp")
            fd = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            try:
                with os.fdopen(fd, "wb") as out:
                    out.write(secrets.token_bytes(32))
                    out.flush()
                    os.fsync(out.fileno())
                try:
                    os.link(draft, path)
                except FileExistsError:
                    pass  # another process won the race; its key is read below
                except OSError:  # no hard links on this filesystem: create exclusively
                    with contextlib.suppress(FileExistsError):
                        _write_exclusively(path, draft.read_bytes())
            finally:
                draft.unlink(missing_ok=True)
        key = path.read_bytes()
        if len(key) != 32:
            raise RuntimeError(f"{path} is damaged ({len(key)} bytes, not 32): delete it; "
                               "everyone will have to log in again")
        return key


def _write_exclusively(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(data)
        out.flush()
        os.fsync(out.fileno())
