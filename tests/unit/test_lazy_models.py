"""ONNX sessions that open later (the server's start, ml/manifest.py lazy=True): the same
predictions as a session opened at once, a bad artifact still refused naming its manifest,
and the number bound written out equal to numpy's."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from tiny_onnx import linear_onnx, write_manifest

from ml import load_manifests
from ml.errors import ManifestError, ModelFailed
from ml.manifest import LazyOnnx
from ml.rows import FLOAT32_MAX


def test_the_float32_bound_is_numpys() -> None:
    assert float(np.finfo(np.float32).max) == FLOAT32_MAX


def test_a_lazy_model_predicts_at_its_first_call_what_an_opened_one_predicts(
        tmp_path: Path) -> None:
    folder = tmp_path
    linear_onnx(folder / "sum.onnx", inputs=3)
    write_manifest(folder, "sum", width=3)
    [eager] = load_manifests(folder)
    [lazy] = load_manifests(folder, lazy=True)
    model = lazy.factory()
    assert isinstance(model, LazyOnnx) and model._model is None  # nothing opened yet
    rows = np.array([[1, 2, 3], [-4.5, 0, 10]], dtype=np.float32)

    opened = eager.factory()
    assert isinstance(opened, LazyOnnx) and opened._model is not None  # opened at load

    assert model.predict_rows(rows) == opened.predict_rows(rows)
    assert model._model is not None and model.open() is model._model  # opened once


def test_a_lazy_model_whose_artifact_does_not_fit_is_refused_naming_its_manifest(
        tmp_path: Path) -> None:
    folder = tmp_path
    linear_onnx(folder / "m.onnx", inputs=3)
    path = write_manifest(folder, "m", width=2)
    [spec] = load_manifests(folder, lazy=True)  # hash checked only
    model = spec.factory()
    assert isinstance(model, LazyOnnx)

    with pytest.raises(ManifestError, match="the manifest declares 2 features") as caught:
        model.open()
    assert str(caught.value).startswith(f"{path}: ")
    with pytest.raises(ModelFailed, match="the manifest declares 2 features"):
        model.predict_rows(np.zeros((1, 2), dtype=np.float32))
