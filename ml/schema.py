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
