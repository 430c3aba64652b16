"""A model's input schema: the ordered features of one row, the model's kind and its labels.

Categories are sets of allowed *numbers* (e.g. sex ∈ {1, 2}): every runtime here takes a float
tensor, so a string category would need an encoding the manifest does not carry. A model that
wants strings encodes them itself before export. An optional feature carries the default the
model gets when a row leaves it out (a float tensor has no "missing").
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

Kind = Literal["regression", "classification"]
FeatureType = Literal["number", "integer"]
KINDS: tuple[Kind, ...] = ("regression", "classification")
FEATURE_TYPES: tuple[FeatureType, ...] = ("number", "integer")
NAME_CHARS = 64  # a feature name or label is at most this long


@dataclass(frozen=True, kw_only=True)
class Feature:
    name: str
    type: FeatureType = "number"
    minimum: float | None = None
    maximum: float | None = None
    categories: tuple[float, ...] = ()
    required: bool = True
    default: float | None = None  # what the model gets when an optional feature is left out

    def __post_init__(self) -> None:
        _require(self.required == (self.default is None),
                 "an optional feature has a default; a required one has none")
        _require(0 < len(self.name) <= NAME_CHARS,
                 f"a feature name is 1 to {NAME_CHARS} characters")
        _require(self.type in FEATURE_TYPES, f"a feature type is one of {FEATURE_TYPES}")
        bounds = [b for b in (self.minimum, self.maximum) if b is not None]
        _require(all(math.isfinite(b) for b in bounds), "a range is finite")
        _require(self.minimum is None or self.maximum is None or self.minimum <= self.maximum,
                 "a range's minimum is not above its maximum")
        _require(all(math.isfinite(c) for c in self.categories), "categories are finite numbers")

    def json_schema(self) -> dict[str, object]:
        schema: dict[str, object] = {"type": self.type}
        for key, bound in (("default", self.default), ("minimum", self.minimum),
                           ("maximum", self.maximum)):
            if bound is not None:
                schema[key] = self._shown(bound)
        if self.categories:
            schema["enum"] = [self._shown(c) for c in self.categories]
        return schema

    def _shown(self, number: float) -> float | int:
        """Whole numbers of an integer feature read as integers (1, not 1.0)."""
        return int(number) if self.type == "integer" and float(number).is_integer() else number

    def public(self) -> dict[str, object]:
        return {"name": self.name, "required": self.required, **self.json_schema()}

    def example(self) -> float | int:
        """A value this feature accepts, as short as possible: the default, the first category,
        or the middle of the range rounded to the fewest decimals that stay inside it."""
        if self.default is not None:
            return self._shown(self.default)
        if self.categories:
            return self._shown(self.categories[0])
        low = self.minimum if self.minimum is not None else self.maximum
        high = self.maximum if self.maximum is not None else self.minimum
        if low is None or high is None:
            return 1 if self.type == "integer" else 1.0
        middle = (low + high) / 2
        if self.type == "integer":  # the whole number nearest the middle that is in range
            return min(max(round(middle), math.ceil(low)), math.floor(high))
        return next((rounded for digits in range(16)
                     if low <= (rounded := round(middle, digits)) <= high), middle)


@dataclass(frozen=True, kw_only=True)
class InputSchema:
    """What one item is. `scalar` is the seed's form: one item is one number, no names."""

    features: tuple[Feature, ...] = ()
    kind: Kind = "regression"
    labels: tuple[str, ...] = ()
    scalar: bool = False

    def __post_init__(self) -> None:
        names = [f.name for f in self.features]
        _require(self.scalar != bool(names), "a schema is scalar or has features, not both")
        _require(len(set(names)) == len(names), "feature names are unique")
        _require(self.kind in KINDS, f"a kind is one of {KINDS}")
        if self.kind == "classification":
            _require(len(self.labels) >= 2, "a classifier has at least two labels")
            _require(len(set(self.labels)) == len(self.labels), "labels are unique")
        else:
            _require(not self.labels, "a regression has no labels")

    @property
    def names(self) -> list[str]:
        return [f.name for f in self.features]

    def example_row(self) -> dict[str, float | int]:
        """One row every feature of which is valid, keyed by feature name in feature order."""
        return {f.name: f.example() for f in self.features}

    def json_schema(self) -> dict[str, object]:
        """The JSON Schema of one item, as `GET /api/v1/models` shows it."""
        if self.scalar:
            return {"type": "number"}
        return {"type": "object",
                "properties": {f.name: f.json_schema() for f in self.features},
                "required": [f.name for f in self.features if f.required],
                "additionalProperties": False}


def _require(condition: bool, reason: str) -> None:
    # Not assert: a schema comes from a manifest an operator wrote, and -O must not skip this.
    if not condition:
        raise ValueError(reason)


SCALAR = InputSchema(scalar=True)
