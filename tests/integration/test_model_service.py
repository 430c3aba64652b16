"""The shipped models through MLService on both stores: the numbers of a bare onnxruntime
session, one charge for the predicted rows only, the model's version on every task, and a row
the model cannot predict left uncharged (a partial settle) with the audit still passing."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt
import onnxruntime as ort
import pytest
from tiny_onnx import linear_onnx, write_manifest

from ledger.audit import audit
from ml import MLModelManager, MLService, catalogue

if TYPE_CHECKING:  # conftest is a module name twice over (tests/ and tests/faults/)
    from conftest import Services

pytestmark = pytest.mark.parametrize("ledger_at", ["sqlite", "postgres"], indirect=True)

REPO = Path(__file__).resolve().parents[2]
MODELS = REPO / "models"
DIABETES, IRIS = 3, 4


def service(services: Services, folder: Path = MODELS) -> MLService:
    return MLService(services.ledger, MLModelManager(catalogue(folder)))


async def funded(services: Services, credits: int) -> int:
    user = await services.users.register("alice", "correct horse battery")
    await services.ledger.top_up(user.id, credits)
    return user.id


def rows_in_range(ml: MLService, model_id: int, count: int) -> npt.NDArray[np.float32]:
    spec = ml.spec(model_id)
    generator = np.random.default_rng(11)
    columns = []
    for feature in spec.schema.features:
        if feature.categories:
            columns.append(generator.choice(feature.categories, size=count))
        else:
            assert feature.minimum is not None and feature.maximum is not None
            column = generator.uniform(feature.minimum, feature.maximum, size=count)
            columns.append(np.round(column) if feature.type == "integer" else column)
    return np.stack(columns, axis=1).astype(np.float32)


def as_objects(ml: MLService, model_id: int, rows: npt.NDArray[np.float32]) -> list[Any]:
    names = ml.spec(model_id).schema.names
    return [dict(zip(names, map(float, row), strict=True)) for row in rows]


def bare(name: str, outputs: list[str] | None, rows: npt.NDArray[np.float32]) -> list[Any]:
    session = ort.InferenceSession(str(MODELS / f"{name}.onnx"),
                                   providers=["CPUExecutionProvider"])
    result: list[Any] = session.run(outputs, {"input": rows})
    return result


async def test_diabetes_through_the_service_gives_the_bare_sessions_numbers(
        services: Services) -> None:
    ml = service(services)
    user_id = await funded(services, 10_000)
    rows = rows_in_range(ml, DIABETES, 500)

    result = await ml.process_task(user_id, DIABETES, as_objects(ml, DIABETES, rows))

    [expected] = bare("diabetes", None, rows)
    assert result.status == "completed"
    assert [p.output for p in result.predictions] == [float(v) for v in expected.reshape(-1)]
    assert result.cost_credits == 500 * 3
    assert result.task.model_version == ml.spec(DIABETES).version
    assert result.balance.balance_credits == 10_000 - 1500


async def test_iris_through_the_service_gives_the_bare_sessions_labels_and_probabilities(
        services: Services) -> None:
    ml = service(services)
    user_id = await funded(services, 1000)
    rows = rows_in_range(ml, IRIS, 300)

    result = await ml.process_task(user_id, IRIS, [list(map(float, r)) for r in rows])

    labels, probabilities = bare("iris", ["label", "probabilities"], rows)
    names = ["setosa", "versicolor", "virginica"]
    assert len(result.predictions) == 300
    for prediction, label, expected in zip(result.predictions, labels, probabilities,
                                           strict=True):
        assert isinstance(prediction.output, dict)
        assert prediction.output["label"] == names[int(label)]
        shown = prediction.output["probabilities"]
        assert isinstance(shown, dict)
        assert list(shown.values()) == pytest.approx(expected.tolist(), abs=1e-6)


async def test_a_mixed_csv_batch_charges_its_valid_rows_and_records_the_version(
        services: Services) -> None:
    ml = service(services)
    user_id = await funded(services, 20)
    text = ("petal_length,petal_width,sepal_length,sepal_width\n"
            "1.4,0.2,5.1,3.5\n"
            "1.4,,5.1,3.5\n"
            "5.2,2.3,6.7,3.0\n"
            "5.2,2.3,6.7,-1\n")

    result = await ml.process_task(user_id, IRIS, text, csv=True)

    assert [(p.index, p.output["label"]) for p in result.predictions  # type: ignore[index]
            ] == [(0, "setosa"), (2, "virginica")]
    assert [(i["index"], i["line"]) for i in result.invalid] == [(1, 3), (3, 5)]
    assert result.cost_credits == 2
    [task] = (await services.ledger.tasks_page(user_id)).data
    assert (task.status, task.cost_credits, task.model_version) == (
        "completed", 2, ml.spec(IRIS).version)
    [charge, _] = (await services.ledger.transactions_page(user_id)).data
    assert charge.amount_credits == -2


async def test_a_row_the_model_cannot_predict_is_released_not_charged(
        services: Services, tmp_path: Path, ledger_at: str | Path) -> None:
    linear_onnx(tmp_path / "root.onnx", inputs=2, sqrt=True)  # √(x0 + x1): NaN below zero
    write_manifest(tmp_path, "root", width=2)  # id 7, 2 credits a row
    ml = service(services, tmp_path)
    user_id = await funded(services, 10)

    result = await ml.process_task(user_id, 7, [[4, 5], [-3, 1], [0, 0]])

    assert [(p.index, p.output) for p in result.predictions] == [(0, 3.0), (2, 0.0)]
    [bad] = result.invalid
    assert bad["index"] == 1 and "not a finite number" in str(bad["error"])
    # Held for three valid rows, charged for the two predicted, the third given back.
    assert (result.task.quoted_credits, result.cost_credits) == (6, 4)
    assert (result.balance.balance_credits, result.balance.held_credits) == (6, 0)
    [hold] = await services.store.read_db().fetchall("SELECT status, amount_credits FROM holds")
    assert hold == {"status": "settled", "amount_credits": 6}
    [charge, _] = (await services.ledger.transactions_page(user_id)).data
    assert charge.amount_credits == -4
    await services.store.close()  # the audit reads the log as an auditor would: alone
    report = await audit(ledger_at, show_progress=False)
    assert report.ok, report.render()
    await services.store.open()
