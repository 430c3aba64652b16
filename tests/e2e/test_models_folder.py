"""The models folder is where a model joins: ML_CABINET_MODELS_DIR (or --models) points at it,
every manifest there is served, and one that cannot be served stops the start with one line
naming the file."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from tiny_onnx import linear_onnx, write_manifest

from web.app import create_app
from web.config import DEFAULT_MODELS_DIR, Config

REPO = Path(__file__).resolve().parents[2]


def test_the_default_models_folder_is_the_repositorys() -> None:
    assert DEFAULT_MODELS_DIR == REPO / "models"
    assert Config().models_dir == REPO / "models"


async def test_a_manifest_dropped_into_the_folder_is_served(
        aiohttp_client: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = tmp_path / "models"
    folder.mkdir()
    linear_onnx(folder / "sum.onnx", inputs=3)
    write_manifest(folder, "sum", width=3)
    monkeypatch.setenv("ML_CABINET_MODELS_DIR", str(folder))
    config = Config.from_env(db_path=tmp_path / "c.db", cheap_password_hashing=True)
    client = await aiohttp_client(create_app(config))

    models = (await (await client.get("/api/v1/models")).json())["data"]

    assert [m["id"] for m in models] == [1, 2, 7]  # the code models stay; 3 and 4 are not here


def test_a_bad_manifest_stops_the_start_with_one_line_naming_it(tmp_path: Path) -> None:
    folder = tmp_path / "models"
    folder.mkdir()
    linear_onnx(folder / "sum.onnx", inputs=3)
    manifest = write_manifest(folder, "sum", width=3)
    data = json.loads(manifest.read_text())
    manifest.write_text(json.dumps({**data, "sha256": "0" * 64}))
    env = {k: v for k, v in os.environ.items() if not k.startswith("ML_CABINET_")}

    done = subprocess.run(
        [sys.executable, "main.py", "--db", str(tmp_path / "c.db"), "--models", str(folder),
         "--port", "1"], cwd=REPO, env=env, capture_output=True, text=True, timeout=60,
        check=False)

    output = (done.stdout + done.stderr).strip()
    assert done.returncode == 4, output
    [line] = output.splitlines()
    assert "refusing to start" in line and str(manifest) in line and "SHA-256" in line
    assert not (tmp_path / "c.db").exists()  # nothing was opened or written
