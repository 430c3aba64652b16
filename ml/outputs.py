"""Raw model outputs to per-row outcomes.

A model may return any sequence of numbers (a list, a numpy array, [n] or [n, 1]). A row whose
output is not a finite number becomes Unpredictable with a reason, so one bad row does not fail
the request; only an answer that fits no row (wrong count or shape, not numbers) is ModelFailed.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING

from ml.errors import ModelFailed
from ml.models import Classified, MLModel, Outcome, TabularModel, Unpredictable
from ml.rows import CheckedRows
from ml.schema import InputSchema

if TYPE_CHECKING:  # imported with the first ONNX model: a code model's outputs need none
    import numpy as np

NOT_FINITE = "the model's output for this row is not a finite number"
BAD_PROBABILITIES = "the model's probabilities for this row are not finite numbers summing to 1"
SUM_TOLERANCE = 1e-3  # float32 probabilities of a few classes sum to 1 within ~1e-6


def run_model(model: MLModel | TabularModel, schema: InputSchema,
              checked: CheckedRows) -> list[Outcome]:
    """One call of `model` on every valid row, one outcome per row (blocking: run it in a
    worker thread). A code model gets float64 numbers, so 1e308 stays 1e308; a tabular model
    gets one float32 matrix."""
    if isinstance(model, MLModel):
        assert schema.scalar, "a code model takes one number per item"
        return list(regression_outcomes(model.predict([row[0] for row in checked.rows]),
                                        len(checked.rows)))
    return model.predict_rows(checked.matrix(len(schema.features)))


def regression_outcomes(raw: object, rows: int) -> list[float | Unpredictable]:
    """One number per row, from [n] or [n, 1] outputs."""
    values = _column(raw, rows)
    return [value if value is not None and math.isfinite(value) else Unpredictable(
        reason=NOT_FINITE) for value in values]


def classification_outcomes(raw: object, labels: Sequence[str],
                            rows: int) -> list[Classified | Unpredictable]:
    """The label and probabilities per row, from a probability matrix [n, len(labels)]."""
    import numpy as np

    try:
        matrix = np.asarray(raw, dtype=np.float64)
    except (TypeError, ValueError, OverflowError) as error:
        raise ModelFailed(f"the model returned probabilities that are not numbers: {error}"
                          ) from None
    if matrix.shape != (rows, len(labels)):
        raise ModelFailed(f"the model returned probabilities of shape {matrix.shape}; "
                          f"expected ({rows}, {len(labels)})")
    return [_classified(row, labels) for row in matrix]


def _classified(row: np.ndarray, labels: Sequence[str]) -> Classified | Unpredictable:
    import numpy as np

    total = float(row.sum())
    if not (np.isfinite(row).all() and (row >= 0).all() and abs(total - 1) <= SUM_TOLERANCE):
        return Unpredictable(reason=BAD_PROBABILITIES)
    probabilities = {label: float(p) / total for label, p in zip(labels, row, strict=True)}
    return Classified(label=labels[int(row.argmax())], probabilities=probabilities)


def _column(raw: object, rows: int) -> list[float | None]:
    """The outputs as floats, None for one that is not a number at all (e.g. a string)."""
    if _from_numpy(raw):
        # An import, not sys.modules: the background thread may be importing numpy now
        # (a module half imported is in sys.modules already; the import waits for it).
        import numpy

        if isinstance(raw, numpy.ndarray):
            if raw.shape not in ((rows,), (rows, 1)):
                raise ModelFailed(f"the model returned an output of shape {raw.shape} for "
                                  f"{rows} rows")
            if (not numpy.issubdtype(raw.dtype, numpy.number)
                    or numpy.issubdtype(raw.dtype, numpy.complexfloating)):
                raise ModelFailed(f"the model returned {raw.dtype} values, not real numbers")
            return [float(value) for value in raw.reshape(rows).astype(numpy.float64)]
    if type(raw) is list and len(raw) == rows and all(type(v) is float for v in raw):
        return list(raw)  # a code model's usual answer: what _number gives for each value
    if not isinstance(raw, Sequence) or isinstance(raw, str | bytes):
        raise ModelFailed(f"the model returned {type(raw).__name__}, not a sequence of numbers")
    if len(raw) != rows:
        raise ModelFailed(f"the model returned {len(raw)} outputs for {rows} rows")
    return [_number(value) for value in raw]


def _from_numpy(value: object) -> bool:
    """Whether `value` is numpy's (numpy is imported with the first ONNX model: until then
    no value can be, and a code model's outputs never need it)."""
    return type(value).__module__.partition(".")[0] == "numpy"


def _number(value: object) -> float | None:
    if isinstance(value, bool):
        return None
    if not isinstance(value, int | float):
        if not _from_numpy(value):
            return None
        import numpy

        if not isinstance(value, numpy.number):
            return None
    try:
        return float(value)
    except (OverflowError, TypeError, ValueError):
        return None  # an int past the float range is not a finite output
