"""Model manifests: a good one becomes a registered, priced, versioned model; every bad one stops
the start with one ManifestError line naming the file."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
from onnx import TensorProto
from tiny_onnx import linear_onnx, write_manifest

from ml import Classified, MLModelManager, catalogue, load_manifests
from ml.errors import ManifestError
from ml.manifest import load_manifest


def refused(path: Path) -> str:
    """The one line a bad manifest stops the start with (its file name first)."""
    with pytest.raises(ManifestError) as caught:
        load_manifests(path.parent)
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith(f"{path}: ")
    return message.removeprefix(f"{path}: ")


def test_a_good_manifest_becomes_a_versioned_model_that_predicts(tmp_path: Path) -> None:
    artifact = linear_onnx(tmp_path / "sum.onnx", inputs=3)
    write_manifest(tmp_path, "sum", width=3)
    [spec] = load_manifests(tmp_path)
    assert spec.version == hashlib.sha256(artifact.read_bytes()).hexdigest()[:12]
    public = spec.public()
    assert (public["id"], public["kind"], public["features"], public["labels"]) == (
        7, "regression", ["x0", "x1", "x2"], [])
    assert public["input_schema"] == {
        "type": "object", "additionalProperties": False, "required": ["x0", "x1", "x2"],
        "properties": {f"x{i}": {"type": "number", "minimum": -100, "maximum": 100}
                       for i in range(3)}}
    manager = MLModelManager(catalogue(tmp_path))
    manager.load_models()
    model = manager.get_tabular(7)
    assert model is not None and manager.get_model(7) is None
    rows = np.array([[1, 2, 3], [0, 0, -1]], dtype=np.float32)
    assert model.predict_rows(rows) == [6.0, -1.0]
    assert [s.id for s in manager.specs()] == [1, 2, 7]


def test_a_classifier_manifest_gives_labels_and_probabilities(tmp_path: Path) -> None:
    linear_onnx(tmp_path / "c.onnx", inputs=2, outputs=3, softmax=True)
    write_manifest(tmp_path, "c", width=2, kind="classification", labels=["a", "b", "c"])
    [spec] = load_manifests(tmp_path)
    model = spec.factory()
    [outcome] = model.predict_rows(np.array([[1, 1]], dtype=np.float32))  # type: ignore[union-attr]
    assert isinstance(outcome, Classified)
    assert outcome.label == "a"  # all equal: the first label wins, as argmax does
    assert sum(outcome.probabilities.values()) == pytest.approx(1, abs=1e-9)


def test_no_folder_or_an_empty_one_adds_no_models(tmp_path: Path) -> None:
    assert load_manifests(tmp_path / "absent") == []
    assert load_manifests(tmp_path) == []
    assert [s.id for s in catalogue(tmp_path)] == [1, 2]


def test_a_missing_artifact_is_refused(tmp_path: Path) -> None:
    path = write_manifest(tmp_path, "gone", width=2)
    assert refused(path) == "artifact gone.onnx is missing"


def test_an_artifact_that_does_not_match_its_sha256_is_refused(tmp_path: Path) -> None:
    linear_onnx(tmp_path / "m.onnx", inputs=2)
    path = write_manifest(tmp_path, "m", width=2, sha256="ab" * 32)
    actual = hashlib.sha256((tmp_path / "m.onnx").read_bytes()).hexdigest()
    assert refused(path) == f"the SHA-256 of m.onnx is {actual}, not the {'ab' * 32} declared"


@pytest.mark.parametrize(("declared", "expected"), [(4, "4 features"), (2, "2 features")])
def test_an_artifact_whose_input_does_not_match_the_features_is_refused(
        tmp_path: Path, declared: int, expected: str) -> None:
    linear_onnx(tmp_path / "m.onnx", inputs=3)
    path = write_manifest(tmp_path, "m", width=declared)
    message = refused(path)
    assert message.startswith("its input 'X' is tensor(float) of shape [None, 3]")
    assert f"the manifest declares {expected}" in message


def test_an_artifact_taking_doubles_is_refused(tmp_path: Path) -> None:
    linear_onnx(tmp_path / "m.onnx", inputs=2, input_type=TensorProto.DOUBLE)
    path = write_manifest(tmp_path, "m", width=2)
    assert "is tensor(double)" in refused(path)


def test_an_artifact_with_a_fixed_batch_size_is_refused(tmp_path: Path) -> None:
    linear_onnx(tmp_path / "m.onnx", inputs=2, batch=1)
    path = write_manifest(tmp_path, "m", width=2)
    assert refused(path) == ("its input 'X' takes a fixed batch of 1 rows; export it with a "
                             "dynamic first dimension")


def test_a_classifier_whose_outputs_do_not_fit_its_labels_is_refused(tmp_path: Path) -> None:
    linear_onnx(tmp_path / "m.onnx", inputs=2, outputs=2, softmax=True)
    path = write_manifest(tmp_path, "m", width=2, kind="classification",
                          labels=["a", "b", "c"])
    assert refused(path).startswith("no output is a float tensor [n, 3] for a classification")


def test_an_artifact_that_is_not_onnx_is_refused(tmp_path: Path) -> None:
    (tmp_path / "m.onnx").write_bytes(b"\x80\x04 certainly not a pickle")
    path = write_manifest(tmp_path, "m", width=2)
    assert refused(path).startswith("onnxruntime cannot load it: ")


@pytest.mark.parametrize("text", ["{not json", "", "[1, 2]", '"a model"', "\xff\xfe"])
def test_a_manifest_that_is_not_a_json_object_is_refused(tmp_path: Path, text: str) -> None:
    path = tmp_path / "bad.json"
    path.write_bytes(text.encode("latin-1"))
    assert refused(path).startswith(("cannot be read as JSON", "is not a JSON object"))


@pytest.mark.parametrize(("override", "reason"), [
    ({"colour": "red"}, "the manifest has unknown keys: colour"),
    ({"id": "7"}, "id is not an integer"),
    ({"id": True}, "id is not an integer"),
    ({"price_per_item_credits": 0}, "id and price_per_item_credits must be ≥ 1"),
    ({"max_items": 100_001}, "max_items 1 to 100,000"),
    ({"kind": "clustering"}, "kind is 'clustering'; it is one of regression, classification"),
    ({"kind": "classification"}, "invalid schema: a classifier has at least two labels"),
    ({"labels": ["a", "b"]}, "invalid schema: a regression has no labels"),
    ({"features": []}, "features is empty"),
    ({"features": [{"name": "x"}, {"name": "x"}]}, "feature names are unique"),
    ({"features": [{"name": "x", "type": "text"}, {"name": "y"}]},
     "feature 1 has type 'text'"),
    ({"features": [{"name": "x", "minimum": "low"}, {"name": "y"}]},
     "feature 1: minimum is not a finite number"),
    ({"features": [{"name": "x", "minimum": 10**400}, {"name": "y"}]},
     "feature 1: minimum is not a finite number"),
    ({"features": [{"name": "x"}, {"name": "y", "required": False}]},
     "feature 2: an optional feature has a default"),
    ({"features": [{"name": "x"}, {"nom": "y"}]}, "feature 2 has unknown keys: nom"),
    ({"features": [{"name": "x", "minimum": 2, "maximum": 1}, {"name": "y"}]},
     "feature 1: a range's minimum is not above its maximum"),
    ({"features": [{"name": ""}, {"name": "y"}]}, "feature 1: a feature name is 1 to 64"),
    ({"labels": ["a", "a"], "kind": "classification"}, "labels are unique"),
    ({"artifact": "../m.onnx"}, "artifact '../m.onnx' is outside the models folder"),
])
def test_a_malformed_manifest_is_refused_with_its_reason(
        tmp_path: Path, override: dict[str, object], reason: str) -> None:
    linear_onnx(tmp_path / "m.onnx", inputs=2)
    path = write_manifest(tmp_path, "m", width=2, **override)
    assert reason in refused(path)


def test_a_manifest_missing_a_key_is_refused(tmp_path: Path) -> None:
    linear_onnx(tmp_path / "m.onnx", inputs=2)
    path = write_manifest(tmp_path, "m", width=2)
    data = json.loads(path.read_text())
    del data["sha256"], data["max_items"]
    path.write_text(json.dumps(data))
    assert refused(path) == "the manifest lacks keys: max_items, sha256"


def test_model_ids_cannot_collide_with_each_other_or_the_code_models(tmp_path: Path) -> None:
    linear_onnx(tmp_path / "m.onnx", inputs=2)
    write_manifest(tmp_path, "a", width=2, artifact="m.onnx")
    second = write_manifest(tmp_path, "b", width=2, artifact="m.onnx")
    assert refused(second) == "model id 7 is already taken by a.json"
    (tmp_path / "b.json").unlink()
    code = write_manifest(tmp_path, "a", width=2, artifact="m.onnx", id=1)
    assert refused(code) == "model id 1 is already taken by a code model"


def test_load_manifest_reads_one_file(tmp_path: Path) -> None:
    linear_onnx(tmp_path / "m.onnx", inputs=2)
    spec = load_manifest(write_manifest(tmp_path, "m", width=2, id=12))
    assert (spec.id, spec.price_per_item_credits, spec.max_items) == (12, 2, 100)
