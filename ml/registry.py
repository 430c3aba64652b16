"""MLModelManager: the registry of models with their prices and limits.

A model joins by `register(ModelSpec(...))`; the manager itself never changes for it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from ml.models import AffineModel, MLModel, SimpleMLModel


@dataclass(frozen=True, kw_only=True)
class ModelSpec:
    id: int
    name: str
    description: str
    price_per_item_credits: int
    max_items: int
    factory: Callable[[], MLModel]

    def __post_init__(self) -> None:
        assert self.id >= 1, "model ids are positive"
        assert self.price_per_item_credits >= 1, "every prediction costs something"
        assert 1 <= self.max_items <= 100_000, "every request is bounded"

    def public(self) -> dict[str, object]:
        return {"id": self.id, "name": self.name, "description": self.description,
                "price_per_item": self.price_per_item_credits, "max_items": self.max_items}


class MLModelManager:
    """Holds the specs, loads each model once, and hands them out by id."""

    def __init__(self, specs: Iterable[ModelSpec] = ()) -> None:
        self._specs: dict[int, ModelSpec] = {}
        self._models: dict[int, MLModel] = {}
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
        return self._models.get(model_id)

    def get_spec(self, model_id: int) -> ModelSpec | None:
        return self._specs.get(model_id)

    def specs(self) -> list[ModelSpec]:
        return sorted(self._specs.values(), key=lambda spec: spec.id)


def default_models() -> list[ModelSpec]:
    return [
        ModelSpec(id=1, name="Doubler", description="Multiplies every number by two.",
                  price_per_item_credits=1, max_items=1000, factory=SimpleMLModel),
        ModelSpec(id=2, name="Linear trend",
                  description="Projects every number with y = 3x + 1.",
                  price_per_item_credits=2, max_items=500,
                  factory=lambda: AffineModel(slope=3.0, intercept=1.0)),
    ]
