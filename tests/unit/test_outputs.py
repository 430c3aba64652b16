"""Raw model outputs to per-row outcomes: one non-finite output fails its row, not the request;
an answer that fits no row fails the whole call with ModelFailed."""

from __future__ import annotations

import math

import numpy as np
import pytest

from ml import Classified, ModelFailed, SimpleMLModel, Unpredictable
from ml.outputs import (
    BAD_PROBABILITIES,
    NOT_FINITE,
    classification_outcomes,
    regression_outcomes,
)

BAD = Unpredictable(reason=NOT_FINITE)


def test_the_doublers_overflow_fails_only_its_row() -> None:
    raw = SimpleMLModel().predict([1.0, 2.0, 1e308])
    assert regression_outcomes(raw, 3) == [2.0, 4.0, BAD]


@pytest.mark.parametrize("raw", [
    [1, 2.5, math.nan, math.inf, -math.inf, 10**400, "7", None, True],
    np.array([1, 2.5, np.nan, np.inf, -np.inf, np.inf, np.nan, np.nan, np.nan], dtype=np.float32),
])
def test_any_sequence_of_numbers_is_taken_and_each_bad_one_marked(raw: object) -> None:
    assert regression_outcomes(raw, 9) == [1.0, 2.5] + [BAD] * 7


def test_a_numpy_column_is_taken_as_rows() -> None:
    assert regression_outcomes(np.array([[1.5], [2.0]], dtype=np.float64), 2) == [1.5, 2.0]
    assert regression_outcomes(np.array([3, 4], dtype=np.int64), 2) == [3.0, 4.0]
    assert regression_outcomes((), 0) == []


@pytest.mark.parametrize(("raw", "message"), [
    ([1.0, 2.0], "2 outputs for 3 rows"),
    (np.zeros((3, 2)), r"shape \(3, 2\) for 3 rows"),
    (np.zeros(4), r"shape \(4,\) for 3 rows"),
    (np.array(["a", "b", "c"]), "not real numbers"),
    (np.array([1j, 2j, 3j]), "not real numbers"),
    ("abc", "str, not a sequence of numbers"),
    (None, "NoneType, not a sequence of numbers"),
])
def test_an_answer_that_fits_no_row_fails_the_call(raw: object, message: str) -> None:
    with pytest.raises(ModelFailed, match=message):
        regression_outcomes(raw, 3)


def test_probabilities_become_a_label_and_a_distribution_summing_to_1() -> None:
    raw = np.array([[0.2, 0.7, 0.1], [0.6, 0.3, 0.1000001]], dtype=np.float32)
    first, second = classification_outcomes(raw, ["a", "b", "c"], 2)
    assert isinstance(first, Classified) and isinstance(second, Classified)
    assert (first.label, second.label) == ("b", "a")
    for outcome in (first, second):
        assert math.fsum(outcome.probabilities.values()) == pytest.approx(1, abs=1e-12)


@pytest.mark.parametrize("row", [[np.nan, 0.5, 0.5], [0.5, 0.5, 0.5], [1.2, -0.2, 0.0],
                                 [np.inf, 0, 0]])
def test_probabilities_that_are_not_a_distribution_fail_only_their_row(row: list[float]) -> None:
    raw = np.array([[1.0, 0.0, 0.0], row], dtype=np.float64)
    good, bad = classification_outcomes(raw, ["a", "b", "c"], 2)
    assert isinstance(good, Classified) and good.label == "a"
    assert bad == Unpredictable(reason=BAD_PROBABILITIES)


def test_probabilities_of_the_wrong_shape_fail_the_call() -> None:
    with pytest.raises(ModelFailed, match=r"shape \(2, 2\); expected \(2, 3\)"):
        classification_outcomes(np.zeros((2, 2)), ["a", "b", "c"], 2)
    with pytest.raises(ModelFailed, match="not numbers"):
        classification_outcomes([["x", "y", "z"]], ["a", "b", "c"], 1)


def test_run_model_gives_a_code_model_its_numbers_unrounded() -> None:
    from ml import SCALAR, check_rows
    from ml.outputs import run_model

    checked = check_rows(SCALAR, [1.5, "x", 1e308, 1e-300], source="json")
    assert run_model(SimpleMLModel(), SCALAR, checked) == [3.0, BAD, 2e-300]
