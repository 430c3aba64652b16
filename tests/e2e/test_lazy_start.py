"""The server serves before its ONNX sessions open: the app is made without importing
onnxruntime or numpy (nor asyncpg on SQLite), and an artifact that turns out not to fit its
manifest once the sessions open still stops the service, exit 4, with one error line naming
the manifest."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

from tiny_onnx import linear_onnx, write_manifest

REPO = Path(__file__).resolve().parents[2]


def test_the_app_is_made_without_the_imports_a_sqlite_start_does_not_need(
        tmp_path: Path) -> None:
    """onnxruntime and numpy (the ONNX sessions), asyncpg (PostgreSQL), babel.messages (the
    catalogs): each loads once asked for, after the server serves."""
    script = ("import sys; from web.app import create_app; from web.config import Config; "
              f"create_app(Config(db_path={str(tmp_path / 'c.db')!r})); "
              "print(sorted(m for m in ('numpy', 'onnxruntime', 'asyncpg', 'babel.messages', "
              "'ledger.audit') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True,
                          text=True, timeout=60, check=True)
    assert done.stdout.strip() == "[]", done.stderr


def test_an_artifact_that_does_not_fit_stops_the_service_once_its_session_opens(
        tmp_path: Path) -> None:
    folder = tmp_path / "models"
    folder.mkdir()
    linear_onnx(folder / "m.onnx", inputs=3)
    manifest = write_manifest(folder, "m", width=2)  # its hash is right: the start goes on
    env = {k: v for k, v in os.environ.items() if not k.startswith("ML_CABINET_")}
    with socket.socket() as free:
        free.bind(("127.0.0.1", 0))
        port = free.getsockname()[1]

    done = subprocess.run(
        [sys.executable, "main.py", "--db", str(tmp_path / "c.db"), "--models", str(folder),
         "--port", str(port)], cwd=REPO, env={**env, "ML_CABINET_VERIFY_RATE": "0"},
        capture_output=True, text=True, timeout=60, check=False)

    output = (done.stdout + done.stderr).strip()
    assert done.returncode == 4, output
    errors = [line for line in output.splitlines() if " ERROR " in line]
    assert len(errors) == 1, output
    assert "refusing to serve" in errors[0] and str(manifest) in errors[0]
    assert "the manifest declares 2 features" in errors[0]
