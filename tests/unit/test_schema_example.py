"""The example row a page shows for a model: every value of it passes that model's validation."""

from __future__ import annotations

from pathlib import Path

import pytest

from ml import Feature, InputSchema, catalogue, check_rows

MODELS_DIR = Path(__file__).resolve().parents[2] / "models"


@pytest.mark.parametrize(("feature", "example"), [
    (Feature(name="x"), 1.0),
    (Feature(name="x", type="integer"), 1),
    (Feature(name="x", minimum=3.9, maximum=8.3), 6.0),
    (Feature(name="x", minimum=0.01, maximum=0.02), 0.01),
    (Feature(name="x", minimum=5.0), 5.0),
    (Feature(name="x", maximum=-2.5), -2.5),
    (Feature(name="x", type="integer", minimum=13, maximum=85), 49),
    (Feature(name="x", type="integer", minimum=0.2, maximum=1.7), 1),
    (Feature(name="x", type="integer", categories=(2.0, 1.0)), 2),
    (Feature(name="x", required=False, default=0.5, minimum=0, maximum=1), 0.5),
])
def test_an_example_value_is_short_and_inside_the_features_bounds(
        feature: Feature, example: float) -> None:
    assert feature.example() == example
    assert type(feature.example()) is type(example)


def test_the_example_row_of_every_shipped_model_is_valid_as_json_and_as_text() -> None:
    tabular = [spec for spec in catalogue(MODELS_DIR) if not spec.schema.scalar]
    assert {spec.id for spec in tabular} == {3, 4}
    for spec in tabular:
        row = spec.schema.example_row()
        assert list(row) == spec.schema.names
        as_text = {name: str(value) for name, value in row.items()}
        for item, source in ((row, "json"), (as_text, "text"), (list(row.values()), "json")):
            checked = check_rows(spec.schema, [item], source=source)
            assert checked.invalid == [], (spec.name, checked.invalid)


def test_a_scalar_schema_has_an_empty_example_row() -> None:
    assert InputSchema(scalar=True).example_row() == {}
