"""OnnxModel: a TabularModel served by onnxruntime from an .onnx file (nothing is unpickled).

onnxruntime has no type stubs; this module is the one narrow, typed place that touches it.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import numpy.typing as npt
import onnxruntime as ort

from ml.errors import ModelFailed
from ml.models import Outcome, TabularModel
from ml.outputs import classification_outcomes, regression_outcomes
from ml.schema import Kind

THREADS = 1  # per call: two cores are shared by the web workers and every model


class OnnxMismatch(ValueError):
    """The .onnx file does not take or give what its manifest declares."""


class OnnxModel(TabularModel):
    """One InferenceSession, built once; `run` is thread-safe, so one instance serves all."""

    def __init__(self, path: Path, *, kind: Kind, features: int,
                 labels: Sequence[str] = ()) -> None:
        options = ort.SessionOptions()
        options.intra_op_num_threads = THREADS
        options.inter_op_num_threads = THREADS
        try:
            self._session = ort.InferenceSession(str(path), sess_options=options,
                                                 providers=["CPUExecutionProvider"])
        except Exception as error:  # onnxruntime raises its own untyped errors
            raise OnnxMismatch(f"onnxruntime cannot load it: {_first_line(error)}") from None
        self.kind = kind
        self.features = features
        self.labels = tuple(labels)
        self._input = self._check_input()
        self._output = self._check_output()

    def predict_rows(self, matrix: npt.NDArray[np.float32]) -> list[Outcome]:
        assert matrix.dtype == np.float32 and matrix.shape[1:] == (self.features,)
        try:
            [raw] = self._session.run([self._output], {self._input: matrix})
        except Exception as error:  # onnxruntime's errors are untyped: wrapped once, here
            raise ModelFailed(f"onnxruntime failed: {_first_line(error)}") from error
        rows = matrix.shape[0]
        if self.kind == "classification":
            return list(classification_outcomes(raw, self.labels, rows))
        return list(regression_outcomes(raw, rows))

    def _check_input(self) -> str:
        inputs = self._session.get_inputs()
        if len(inputs) != 1:
            raise OnnxMismatch(f"it has {len(inputs)} inputs; one float tensor [n, features] "
                               "is expected")
        [arg] = inputs
        width = arg.shape[-1] if len(arg.shape) == 2 else None
        if arg.type != "tensor(float)" or width != self.features:
            raise OnnxMismatch(f"its input {arg.name!r} is {arg.type} of shape {arg.shape}; "
                               f"the manifest declares {self.features} features (tensor(float) "
                               f"[n, {self.features}])")
        if isinstance(arg.shape[0], int):  # every request is one call with all its rows
            raise OnnxMismatch(f"its input {arg.name!r} takes a fixed batch of {arg.shape[0]} "
                               "rows; export it with a dynamic first dimension")
        return str(arg.name)

    def _check_output(self) -> str:
        outputs = {arg.name: arg for arg in self._session.get_outputs()}
        width = len(self.labels) if self.kind == "classification" else 1
        fitting = [name for name, arg in outputs.items() if arg.type == "tensor(float)"
                   and _width(arg.shape) == width]
        if self.kind == "classification" and "probabilities" in fitting:
            return "probabilities"
        if not fitting:
            raise OnnxMismatch(
                f"no output is a float tensor [n, {width}] for a {self.kind} of {width} "
                f"{'classes' if self.kind == 'classification' else 'value'} (outputs: "
                + ", ".join(f"{n} {a.type} {a.shape}" for n, a in outputs.items())
                + "; export classifiers with zipmap off)")
        return str(fitting[0])


def _width(shape: list[object]) -> object:
    """A tensor's row width: 1 for [n] and [n, 1], the last dimension for [n, k]."""
    return 1 if len(shape) == 1 else (shape[-1] if len(shape) == 2 else None)


def _first_line(error: Exception) -> str:
    return (str(error).strip().splitlines() or [type(error).__name__])[0][:200]
