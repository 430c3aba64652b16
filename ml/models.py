"""The seed's MLModel and SimpleMLModel, a second code model, and the TabularModel protocol that
file-backed models (ml.onnx_runtime) serve rows of named features through."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # numpy is imported with the first ONNX model, not at start-up
    import numpy as np
    import numpy.typing as npt


class MLModel(ABC):
    """A model predicts one output per input. Implementations must be thread-safe: they run
    in a worker thread, never on the event loop."""

    @abstractmethod
    def predict(self, data: list[float]) -> list[float]: ...


class SimpleMLModel(MLModel):
    """The seed's model: each input times two."""

    def predict(self, data: list[float]) -> list[float]:
        return [value * 2 for value in data]


class AffineModel(MLModel):
    """y = slope · x + intercept, with both fixed when the model is loaded."""

    def __init__(self, slope: float, intercept: float) -> None:
        self.slope = slope
        self.intercept = intercept

    def predict(self, data: list[float]) -> list[float]:
        return [self.slope * value + self.intercept for value in data]


@dataclass(frozen=True, kw_only=True)
class Classified:
    """A classifier's answer for one row: the most probable label and every label's probability
    (they sum to 1)."""

    label: str
    probabilities: dict[str, float]


@dataclass(frozen=True, kw_only=True)
class Unpredictable:
    """The model gave no usable answer for this one row (e.g. NaN); the row is reported, not
    charged, and the other rows stand."""

    reason: str


Prediction = float | Classified
Outcome = Prediction | Unpredictable


class TabularModel(ABC):
    """A model of rows of named features. Implementations must be thread-safe: one call per
    request runs in a worker thread with every valid row at once."""

    @abstractmethod
    def predict_rows(self, matrix: npt.NDArray[np.float32]) -> list[Outcome]:
        """One outcome per row of `matrix` [n, features], in order."""
