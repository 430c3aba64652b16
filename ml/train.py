"""`python -m ml.train [--out DIR]`: retrain the shipped models and rewrite their artifacts and
manifests (models/ at the repo root by default). Development only: scikit-learn and skl2onnx
are imported here and nowhere else.

Everything is seeded and the ONNX files are byte-stable on one machine: running it twice
gives the same SHA-256s. Another CPU may pick other BLAS kernels and differ in the last bits of
a float32 weight (the diabetes Ridge); tests/integration/test_onnx_models.py checks the
committed files' graphs, manifests, weights and predictions to a stated tolerance.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

REPO_MODELS = Path(__file__).resolve().parent.parent / "models"
SEED = 0
HELD_OUT = 0.25  # share of each data set kept out of training to measure quality
OPSET = 17  # pinned so that a newer skl2onnx default does not change the bytes
WIDEN = 0.1  # ranges accept 10% of the observed span beyond the data on each side


@dataclass(frozen=True, kw_only=True)
class Trained:
    slug: str
    manifest: dict[str, Any]
    onnx_bytes: bytes
    quality: str


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ml.train", description=__doc__)
    parser.add_argument("--out", type=Path, default=REPO_MODELS,
                        help="folder for the .onnx files and manifests (default: models/)")
    out: Path = parser.parse_args(argv).out
    out.mkdir(parents=True, exist_ok=True)
    for trained in (train_diabetes(), train_iris()):
        (out / f"{trained.slug}.onnx").write_bytes(trained.onnx_bytes)
        manifest = {**trained.manifest, "artifact": f"{trained.slug}.onnx",
                    "sha256": hashlib.sha256(trained.onnx_bytes).hexdigest()}
        (out / f"{trained.slug}.json").write_text(json.dumps(manifest, indent=2) + "\n",
                                                  encoding="utf-8")
        print(f"{trained.slug}: {trained.quality}; sha256 {manifest['sha256'][:12]}; "
              f"{len(trained.onnx_bytes):,} bytes")
    return 0


def train_diabetes() -> Trained:
    from sklearn.datasets import load_diabetes
    from sklearn.linear_model import Ridge
    from sklearn.metrics import r2_score
    from sklearn.model_selection import train_test_split
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    data = load_diabetes(scaled=False)
    x, y = data.data.astype(np.float32), data.target
    x_train, x_test, y_train, y_test = train_test_split(x, y, test_size=HELD_OUT,
                                                        random_state=SEED)
    model = make_pipeline(StandardScaler(), Ridge(alpha=1.0)).fit(x_train, y_train)
    r2 = r2_score(y_test, model.predict(x_test))
    names = list(data.feature_names)
    assert names == ["age", "sex", "bmi", "bp", "s1", "s2", "s3", "s4", "s5", "s6"], names
    features = [_feature(name, x[:, i]) for i, name in enumerate(names)]
    features[0]["type"] = "integer"  # age in whole years
    features[1] = {"name": "sex", "type": "integer", "categories": [1, 2], "required": True}
    manifest = {
        "id": 3, "name": "Diabetes progression",
        "description": "A quantitative measure of diabetes progression one year after baseline, "
                       "from ten baseline values (age in years, sex 1 or 2, BMI, mean blood "
                       "pressure, six blood serum measurements). Ridge regression on "
                       "scikit-learn's diabetes data.",
        "price_per_item_credits": 3, "max_items": 5000, "kind": "regression",
        "features": features, "labels": []}
    return Trained(slug="diabetes", manifest=manifest,
                   onnx_bytes=_onnx(model, len(names), name="diabetes"),
                   quality=f"held-out R² {r2:.3f} on {len(y_test)} of {len(y)} rows")


def train_iris() -> Trained:
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import accuracy_score
    from sklearn.model_selection import train_test_split
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    data = load_iris()
    x, y = data.data.astype(np.float32), data.target
    x_train, x_test, y_train, y_test = train_test_split(x, y, test_size=HELD_OUT,
                                                        random_state=SEED, stratify=y)
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000, random_state=SEED))
    model.fit(x_train, y_train)
    accuracy = accuracy_score(y_test, model.predict(x_test))
    names = ["sepal_length", "sepal_width", "petal_length", "petal_width"]
    labels = [str(label) for label in data.target_names]
    assert labels == ["setosa", "versicolor", "virginica"], labels
    manifest = {
        "id": 4, "name": "Iris species",
        "description": "The species of an iris flower from its sepal and petal length and "
                       "width in cm, with the probability of each species. Logistic "
                       "regression on scikit-learn's iris data.",
        "price_per_item_credits": 1, "max_items": 5000, "kind": "classification",
        "features": [_feature(name, x[:, i]) for i, name in enumerate(names)],
        "labels": labels}
    return Trained(slug="iris", manifest=manifest,
                   onnx_bytes=_onnx(model, len(names), name="iris",
                                                    classifier=True),
                   quality=f"held-out accuracy {accuracy:.3f} on {len(y_test)} of {len(y)} rows")


def _feature(name: str, column: npt.NDArray[np.float32]) -> dict[str, Any]:
    """A number feature whose range is the data's, widened, rounded outward, never below 0
    when the data never is (no one has a negative blood pressure)."""
    low, high = float(column.min()), float(column.max())
    margin = (high - low) * WIDEN
    minimum = math.floor((low - margin) * 10) / 10
    maximum = math.ceil((high + margin) * 10) / 10
    if low >= 0:
        minimum = max(minimum, 0.0)
    return {"name": name, "type": "number", "minimum": minimum, "maximum": maximum,
            "required": True}


def _onnx(model: Any, width: int, *, name: str, classifier: bool = False) -> bytes:
    from skl2onnx import convert_sklearn
    from skl2onnx.common.data_types import FloatTensorType

    # zipmap off: probabilities come as one float tensor [n, classes], not a list of maps.
    options = {id(model.steps[-1][1]): {"zipmap": False}} if classifier else {}
    onnx_model = convert_sklearn(model, initial_types=[("input", FloatTensorType([None, width]))],
                                 target_opset=OPSET, options=options or None,
                                 # skl2onnx names the graph with a random uuid4 unless told:
                                 # the one thing that made two runs differ byte for byte.
                                 name=name)
    return bytes(onnx_model.SerializeToString())


if __name__ == "__main__":
    sys.exit(main())
