"""MLModelManager: the registry of models with their prices and limits.

A model joins by `register(ModelSpec(...))`; the manager itself never changes for it.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from ml.models import AffineModel, MLModel, SimpleMLModel, TabularModel
from ml.schema import SCALAR, InputSchema, Kind

Runtime = MLModel | TabularModel
VERSION_HEX = 12  # a version is the first 12 hex digits of a SHA-256


def code_version(class_name: str, **params: float) -> str:
    """The version of a code-only model: the SHA-256 of its class name and parameters, so that
    changing either (y = 3x + 1 to 3x + 2) changes the version a task records."""
    text = json.dumps({"class": class_name, "params": params}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:VERSION_HEX]


@dataclass(frozen=True, kw_only=True)
class ModelSpec:
    id: int
    name: str
    description: str
    price_per_item_credits: int
    max_items: int
    factory: Callable[[], Runtime]
    schema: InputSchema = SCALAR
    version: str = ""  # empty: code_version() of the factory's name is filled in
    # Pure and fast enough to run on the event loop (microseconds for max_items rows): its
    # predictions are charged in one write, without a hold (see MLService, README).
    one_transaction: bool = False

    def __post_init__(self) -> None:
        assert self.id >= 1, "model ids are positive"
        assert self.price_per_item_credits >= 1, "every prediction costs something"
        assert 1 <= self.max_items <= 100_000, "every request is bounded"
        if not self.version:
            name = getattr(self.factory, "__qualname__", type(self.factory).__qualname__)
            object.__setattr__(self, "version", code_version(name))
        assert len(self.version) == VERSION_HEX, "a version is 12 hex digits"

    @property
    def kind(self) -> Kind:
        """The schema says it; one place, so a spec cannot claim one kind and serve another."""
        return self.schema.kind

    def public(self) -> dict[str, object]:
        return {"id": self.id, "name": self.name, "description": self.description,
                "price_per_item": self.price_per_item_credits, "max_items": self.max_items,
                "kind": self.kind, "features": self.schema.names,
                "input_schema": self.schema.json_schema(), "labels": list(self.schema.labels),
                "version": self.version}


class MLModelManager:
    """Holds the specs, loads each model once, and hands them out by id."""

    def __init__(self, specs: Iterable[ModelSpec] = ()) -> None:
        self._specs: dict[int, ModelSpec] = {}
        self._models: dict[int, Runtime] = {}
        for spec in specs:
            self.register(spec)

    def register(self, spec: ModelSpec) -> None:
        if spec.id in self._specs:
            raise ValueError(f"model id {spec.id} is registered twice")
        self._specs[spec.id] = spec

    def load_models(self) -> None:
        """Build every registered model that is not built yet (weights load here, once)."""
        for model_id, spec in self._specs.items():
            if model_id not in self._models:
                self._models[model_id] = spec.factory()

    def get_model(self, model_id: int) -> MLModel | None:
        """The loaded code model (one number per item); None for a tabular model."""
        model = self._models.get(model_id)
        return model if isinstance(model, MLModel) else None

    def get_runtime(self, model_id: int) -> Runtime | None:
        """The loaded model of either kind, for ml.outputs.run_model."""
        return self._models.get(model_id)

    def get_tabular(self, model_id: int) -> TabularModel | None:
        """The loaded model of rows of named features (from a manifest), or None."""
        model = self._models.get(model_id)
        return model if isinstance(model, TabularModel) else None

    def get_spec(self, model_id: int) -> ModelSpec | None:
        return self._specs.get(model_id)

    def specs(self) -> list[ModelSpec]:
        return sorted(self._specs.values(), key=lambda spec: spec.id)


def default_models() -> list[ModelSpec]:
    """The code-defined models (ids 1 and 2); manifest models come from catalogue()."""
    return [
        ModelSpec(id=1, name="Doubler", description="Multiplies every number by two.",
                  price_per_item_credits=1, max_items=1000, factory=SimpleMLModel,
                  version=code_version("SimpleMLModel"), one_transaction=True),
        ModelSpec(id=2, name="Linear trend",
                  description="Projects every number with y = 3x + 1.",
                  price_per_item_credits=2, max_items=500,
                  factory=lambda: AffineModel(slope=3.0, intercept=1.0),
                  version=code_version("AffineModel", slope=3.0, intercept=1.0),
                  one_transaction=True),
    ]

