"""MLModelManager: models join by registration, load once, and are handed out by id."""

from __future__ import annotations

import pytest

from ml import (
    AffineModel,
    MLModel,
    MLModelManager,
    ModelSpec,
    SimpleMLModel,
    code_version,
    default_models,
)


class CountingFactory:
    """A fake model factory that counts how often it builds (loading weights is costly)."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self) -> MLModel:
        self.calls += 1
        return SimpleMLModel()


class Negator(MLModel):
    """A model the manager has never heard of."""

    def predict(self, data: list[float]) -> list[float]:
        return [-value for value in data]


def spec(model_id: int, factory: object = SimpleMLModel, **overrides: object) -> ModelSpec:
    fields: dict[str, object] = {"id": model_id, "name": f"model {model_id}",
                                 "description": "test", "price_per_item_credits": 1,
                                 "max_items": 10, "factory": factory, **overrides}
    return ModelSpec(**fields)  # type: ignore[arg-type]


def test_models_are_loaded_once_however_often_load_is_called() -> None:
    one, two = CountingFactory(), CountingFactory()
    manager = MLModelManager([spec(1, one), spec(2, two)])
    assert manager.get_model(1) is None  # registering loads nothing yet
    assert one.calls == 0
    manager.load_models()
    model = manager.get_model(1)
    manager.load_models()
    assert (one.calls, two.calls) == (1, 1)
    assert manager.get_model(1) is model


def test_a_model_registered_after_loading_is_loaded_on_the_next_load() -> None:
    first, late = CountingFactory(), CountingFactory()
    manager = MLModelManager([spec(1, first)])
    manager.load_models()
    manager.register(spec(5, late))
    assert manager.get_model(5) is None
    manager.load_models()
    assert (first.calls, late.calls) == (1, 1)
    assert manager.get_model(5) is not None


def test_a_duplicate_id_is_refused_and_the_first_spec_kept() -> None:
    manager = MLModelManager([spec(1, name="first")])
    with pytest.raises(ValueError, match="registered twice"):
        manager.register(spec(1, name="second"))
    found = manager.get_spec(1)
    assert found is not None and found.name == "first"
    with pytest.raises(ValueError, match="registered twice"):
        MLModelManager([spec(3), spec(3)])


def test_an_unknown_id_is_none_not_an_error() -> None:
    manager = MLModelManager(default_models())
    manager.load_models()
    assert manager.get_spec(99) is None
    assert manager.get_model(99) is None


def test_a_new_model_plugs_in_through_its_spec_alone() -> None:
    manager = MLModelManager(default_models())
    manager.register(spec(3, Negator, name="Negator", price_per_item_credits=4, max_items=7))
    manager.load_models()
    model = manager.get_model(3)
    assert model is not None
    assert model.predict([1.0, -2.5]) == [-1.0, 2.5]
    assert [s.id for s in manager.specs()] == [1, 2, 3]
    assert manager.specs()[2].public() == {
        "id": 3, "name": "Negator", "description": "test", "price_per_item": 4, "max_items": 7,
        "kind": "regression", "features": [], "input_schema": {"type": "number"}, "labels": [],
        "version": code_version("Negator")}


def test_the_default_models_are_priced_and_bounded() -> None:
    manager = MLModelManager(default_models())
    manager.load_models()
    doubler, trend = manager.get_model(1), manager.get_model(2)
    assert isinstance(doubler, SimpleMLModel)
    assert isinstance(trend, AffineModel)
    assert trend.predict([0.0, 2.0]) == [1.0, 7.0]
    assert [(s.price_per_item_credits, s.max_items) for s in manager.specs()] == [(1, 1000),
                                                                                  (2, 500)]


def test_simple_model_doubles_every_input() -> None:
    assert SimpleMLModel().predict([0.0, 1.5, -3.0, 1e300]) == [0.0, 3.0, -6.0, 2e300]
    assert SimpleMLModel().predict([]) == []


@pytest.mark.parametrize("overrides", [
    {"id": 0}, {"price_per_item_credits": 0}, {"max_items": 0}, {"max_items": 100_001},
])
def test_a_spec_without_a_price_or_a_bound_is_refused(overrides: dict[str, object]) -> None:
    with pytest.raises(AssertionError):
        spec(1, **overrides)


def test_a_code_model_version_changes_with_its_class_or_its_parameters() -> None:
    doubler, trend = default_models()
    assert doubler.version == code_version("SimpleMLModel")
    assert trend.version == code_version("AffineModel", slope=3.0, intercept=1.0)
    assert code_version("AffineModel", slope=3.0, intercept=2.0) != trend.version
    assert code_version("AffineModel", intercept=1.0, slope=3.0) == trend.version
    assert len({doubler.version, trend.version}) == 2
    assert all(len(s.version) == 12 and int(s.version, 16) >= 0 for s in (doubler, trend))


def test_a_code_model_is_not_handed_out_as_a_tabular_one() -> None:
    manager = MLModelManager(default_models())
    manager.load_models()
    assert manager.get_model(1) is not None
    assert manager.get_tabular(1) is None
