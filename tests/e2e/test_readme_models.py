"""The README's "Adding a model" works exactly as written: its code blocks run, in order, in a
copy of the repository's models folder, and both new models then predict over HTTP."""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import Any

import pytest
from cabinet_http import api_signup

from ml import MLModelManager

ROOT = Path(__file__).resolve().parents[2]


def readme_blocks() -> list[str]:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    start = readme.index("## Adding a model")
    section = readme[start:readme.index("\n## ", start + 1)]
    return re.findall(r"```python\n(.*?)```", section, re.S)


async def test_the_readme_adds_a_model_by_file_and_one_by_code(
        aiohttp_client: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    shutil.copytree(ROOT / "models", tmp_path / "models")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("ML_CABINET_DB", str(tmp_path / "readme.db"))
    blocks = readme_blocks()
    assert len(blocks) == 2

    namespace: dict[str, Any] = {"__name__": "readme"}
    for block in blocks:
        exec(compile(block, "README.md", "exec"), namespace)

    assert capsys.readouterr().out == "[1, 2, 3, 4, 5]\n"
    manager: MLModelManager = namespace["manager"]
    assert [spec.id for spec in manager.specs()] == [1, 2, 3, 4, 5, 6]
    client = await aiohttp_client(namespace["app"])
    alice = await api_signup(client, "alice", top_up=10)
    iris_v2 = await client.post("/api/v1/predict", headers=alice.auth, json={
        "model_id": 5, "data": [[5.1, 3.5, 1.4, 0.2]]})
    squared = await client.post("/api/v1/predict", headers=alice.auth, json={
        "model_id": 6, "data": [3, 1.5]})

    assert iris_v2.status == 200, await iris_v2.text()
    assert (await iris_v2.json())["predictions"][0]["output"]["label"] == "setosa"
    assert squared.status == 200, await squared.text()
    assert [p["output"] for p in (await squared.json())["predictions"]] == [9.0, 2.25]
    assert (await squared.json())["cost"] == 2
