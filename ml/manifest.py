"""Model manifests: one JSON file per model in the models folder, next to its ONNX artifact.

A manifest is read strictly (no unknown keys, every type checked) and its artifact is hashed and
opened at start-up, so a bad file stops the start with one ManifestError line naming it rather
than failing the first request. See ml/train.py for the two shipped manifests.

The server asks for `lazy=True`: the manifest and the artifact's hash are checked before it
serves, and the ONNX session (onnxruntime and numpy: ~0.15 s of imports) opens in the
background once it serves (web/app.py models_ctx); a session that cannot open then stops the
service with the same line. A prediction that comes first waits for its session.
"""

from __future__ import annotations

import hashlib
import json
import math
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ml.errors import ManifestError, ModelFailed
from ml.models import Outcome, TabularModel
from ml.registry import VERSION_HEX, ModelSpec, default_models
from ml.schema import FEATURE_TYPES, KINDS, Feature, InputSchema, Kind

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

    from ml.onnx_runtime import OnnxModel

KEYS = {"id", "name", "description", "price_per_item_credits", "max_items", "kind", "features",
        "labels", "artifact", "sha256"}
FEATURE_KEYS = {"name", "type", "minimum", "maximum", "categories", "required", "default"}
MANIFEST_BYTES = 1_000_000  # a manifest is a few kB; a bigger file is not one
CODE_MODEL_IDS = {spec.id for spec in default_models()}


def catalogue(models_dir: Path, *, lazy: bool = False) -> list[ModelSpec]:
    """The code models and every model whose manifest is in `models_dir`."""
    return [*default_models(), *load_manifests(models_dir, lazy=lazy)]


def load_manifests(folder: Path, *, lazy: bool = False) -> list[ModelSpec]:
    """A ModelSpec per `*.json` in `folder` (none if it does not exist), sorted by file name."""
    specs: list[ModelSpec] = []
    seen: dict[int, Path] = {}
    for path in sorted(folder.glob("*.json")) if folder.is_dir() else []:
        spec = load_manifest(path, lazy=lazy)
        if spec.id in seen or spec.id in CODE_MODEL_IDS:
            owner = seen[spec.id].name if spec.id in seen else "a code model"
            raise ManifestError(f"{path}: model id {spec.id} is already taken by {owner}")
        seen[spec.id] = path
        specs.append(spec)
    return specs


def load_manifest(path: Path, *, lazy: bool = False) -> ModelSpec:
    """One manifest: checked, its artifact hashed and opened with onnxruntime (lazy: its
    session opens at LazyOnnx.open, see the module docstring)."""
    try:
        return _load(path, lazy)
    except _Bad as error:
        raise ManifestError(f"{path}: {error}") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ManifestError(f"{path}: cannot be read as JSON: {error}") from None


class _Bad(ValueError):
    pass


def _load(path: Path, lazy: bool) -> ModelSpec:
    if path.stat().st_size > MANIFEST_BYTES:
        raise _Bad(f"is larger than {MANIFEST_BYTES:,} bytes")
    data = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(data, dict):
        raise _Bad("is not a JSON object")
    _keys(data, KEYS, required=KEYS - {"labels"}, where="the manifest")
    price, max_items = _get(data, "price_per_item_credits", int), _get(data, "max_items", int)
    if price < 1 or not 1 <= max_items <= 100_000 or _get(data, "id", int) < 1:
        raise _Bad("id and price_per_item_credits must be ≥ 1 and max_items 1 to 100,000")
    schema = _schema(data)
    artifact = _artifact(path, _get(data, "artifact", str))
    sha256 = _get(data, "sha256", str).lower()
    actual = _sha256(artifact)
    if actual != sha256:
        raise _Bad(f"the SHA-256 of {artifact.name} is {actual}, not the {sha256} declared")
    model = LazyOnnx(path, artifact, kind=schema.kind, features=len(schema.features),
                     labels=schema.labels)
    if not lazy:
        model.open()
    return ModelSpec(id=data["id"], name=_get(data, "name", str),
                     description=_get(data, "description", str), price_per_item_credits=price,
                     max_items=max_items, factory=_loaded(model), schema=schema,
                     version=actual[:VERSION_HEX])


def _loaded(model: LazyOnnx) -> Callable[[], LazyOnnx]:
    # The session was opened to check the file (or opens later, once); load_models() hands
    # out that same one.
    return lambda: model


class LazyOnnx(TabularModel):
    """An ONNX model whose session opens once, at `open()` or at its first prediction
    (which then waits for it: never a failure for being early). Thread-safe."""

    def __init__(self, manifest: Path, artifact: Path, *, kind: Kind, features: int,
                 labels: Sequence[str] = ()) -> None:
        self.manifest, self.artifact = manifest, artifact
        self.kind, self.features, self.labels = kind, features, tuple(labels)
        self._lock = threading.Lock()
        self._model: OnnxModel | None = None

    def open(self) -> OnnxModel:
        """The session, opened now if it is not yet; ManifestError names the manifest."""
        with self._lock:
            if self._model is None:
                try:
                    from ml.onnx_runtime import OnnxMismatch, OnnxModel
                except ImportError as error:  # a broken install: one line, exit 4
                    raise ManifestError(f"{self.manifest}: the ONNX runtime cannot be "
                                        f"loaded: {error}") from None
                try:
                    self._model = OnnxModel(self.artifact, kind=self.kind,
                                            features=self.features, labels=self.labels)
                except OnnxMismatch as error:
                    raise ManifestError(f"{self.manifest}: {error}") from None
            return self._model

    def predict_rows(self, matrix: npt.NDArray[np.float32]) -> list[Outcome]:
        try:
            model = self.open()
        except ManifestError as error:  # the service is stopping for it (web/app.py)
            raise ModelFailed(str(error)) from None
        return model.predict_rows(matrix)


def _schema(data: dict[str, Any]) -> InputSchema:
    kind = _get(data, "kind", str)
    if kind not in KINDS:
        raise _Bad(f"kind is {kind!r}; it is one of {', '.join(KINDS)}")
    features = _get(data, "features", list)
    if not features:
        raise _Bad("features is empty; a model takes at least one")
    labels = data.get("labels", [])
    if not isinstance(labels, list) or not all(isinstance(label, str) for label in labels):
        raise _Bad("labels is not a list of strings")
    try:
        return InputSchema(features=tuple(_feature(i, f) for i, f in enumerate(features)),
                           kind=kind, labels=tuple(labels))
    except ValueError as error:  # the schema's own invariants
        raise _Bad(f"invalid schema: {error}") from None


def _feature(index: int, data: object) -> Feature:
    where = f"feature {index + 1}"
    if not isinstance(data, dict):
        raise _Bad(f"{where} is not an object")
    _keys(data, FEATURE_KEYS, required={"name"}, where=where)
    kind = data.get("type", "number")
    if kind not in FEATURE_TYPES:
        raise _Bad(f"{where} has type {kind!r}; it is one of {', '.join(FEATURE_TYPES)}")
    categories = data.get("categories", [])
    if not isinstance(categories, list) or not all(_is_number(c) for c in categories):
        raise _Bad(f"{where}: categories is not a list of numbers")
    for key in ("minimum", "maximum", "default"):
        if key in data and not _is_number(data[key]):
            raise _Bad(f"{where}: {key} is not a finite number")
    if not isinstance(data.get("required", True), bool) or not isinstance(data["name"], str):
        raise _Bad(f"{where}: name must be a string and required true or false")
    try:
        return Feature(name=data["name"], type=kind, minimum=data.get("minimum"),
                       maximum=data.get("maximum"),
                       categories=tuple(float(c) for c in categories),
                       required=data.get("required", True), default=data.get("default"))
    except ValueError as error:
        raise _Bad(f"{where}: {error}") from None


def _artifact(manifest: Path, relative: str) -> Path:
    folder = manifest.parent.resolve()
    artifact = (folder / relative).resolve()
    if not artifact.is_relative_to(folder):
        raise _Bad(f"artifact {relative!r} is outside the models folder")
    if not artifact.is_file():
        raise _Bad(f"artifact {relative} is missing")
    return artifact


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as file:
        for chunk in iter(lambda: file.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _keys(data: dict[str, Any], allowed: set[str], *, required: set[str], where: str) -> None:
    unknown, missing = sorted(set(data) - allowed), sorted(required - set(data))
    if unknown:
        raise _Bad(f"{where} has unknown keys: {', '.join(unknown)}")
    if missing:
        raise _Bad(f"{where} lacks keys: {', '.join(missing)}")


def _get(data: dict[str, Any], key: str, kind: type) -> Any:
    value = data[key]
    if not isinstance(value, kind) or isinstance(value, bool):
        raise _Bad(f"{key} is not {'an' if kind is int else 'a'} {_TYPE_NAMES[kind]}")
    return value


_TYPE_NAMES = {int: "integer", str: "string", list: "list"}


def _is_number(value: object) -> bool:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    try:
        return math.isfinite(value)
    except OverflowError:  # an int past the float range
        return False
