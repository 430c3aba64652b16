"""The seed's MLModel and SimpleMLModel, and a second model to show the registry at work."""

from __future__ import annotations

from abc import ABC, abstractmethod


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
