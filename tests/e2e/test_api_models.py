"""The shipped models over HTTP: rows as objects, arrays and CSV files, invalid rows reported,
only predicted rows charged, rows the model cannot predict left uncharged, and a model that
fails as a whole answered 502 with nothing charged."""

from __future__ import annotations

import io
import math
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest
from aiohttp import FormData
from aiohttp.test_utils import TestClient
from cabinet_http import ApiUser, api_signup, expect_problem

from ml import MLModelManager, ModelSpec, TabularModel, catalogue
from ml.models import Outcome
from web.app import create_app
from web.config import DEFAULT_MODELS_DIR, Config

Client = TestClient[Any, Any]
DIABETES, IRIS = 3, 4
SETOSA = {"sepal_length": 5.1, "sepal_width": 3.5, "petal_length": 1.4, "petal_width": 0.2}
VIRGINICA = [6.7, 3.0, 5.2, 2.3]
PATIENT = {"age": 59, "sex": 2, "bmi": 32.1, "bp": 101.0, "s1": 157, "s2": 93.2, "s3": 38,
           "s4": 4.0, "s5": 4.8598, "s6": 87}


async def predict(client: Client, user: ApiUser, model_id: int, data: object,
                  key: str | None = None) -> Any:
    headers = user.auth if key is None else {**user.auth, "Idempotency-Key": key}
    return await client.post("/api/v1/predict", json={"model_id": model_id, "data": data},
                             headers=headers)


async def upload(client: Client, user: ApiUser, content: bytes, model_id: int) -> Any:
    form = FormData()
    form.add_field("model_id", str(model_id))
    form.add_field("file", io.BytesIO(content), filename="rows.csv", content_type="text/csv")
    return await client.post("/api/v1/predict", data=form, headers=user.auth)


async def balance(client: Client, user: ApiUser) -> int:
    body = await (await client.get("/api/v1/balance", headers=user.auth)).json()
    assert body["held"] == 0
    return int(body["balance"])


async def test_the_model_list_describes_each_model_for_a_client(client: Client) -> None:
    models = {m["id"]: m for m in (await (await client.get("/api/v1/models")).json())["data"]}
    iris = models[IRIS]
    assert iris["kind"] == "classification"
    assert iris["features"] == list(SETOSA)
    assert iris["labels"] == ["setosa", "versicolor", "virginica"]
    assert iris["input_schema"]["required"] == list(SETOSA)
    assert models[DIABETES]["features"] == list(PATIENT)
    assert models[1]["kind"] == "regression" and models[1]["features"] == []
    assert all(len(m["version"]) == 12 for m in models.values())


async def test_object_and_array_rows_are_classified_and_charged_per_row(client: Client) -> None:
    alice = await api_signup(client, "alice", top_up=10)
    models = {m["id"]: m for m in (await (await client.get("/api/v1/models")).json())["data"]}

    response = await predict(client, alice, IRIS, [SETOSA, VIRGINICA])

    assert response.status == 200, await response.text()
    body = await response.json()
    first, second = body["predictions"]
    assert (first["index"], first["input"]) == (0, SETOSA)
    assert (second["index"], second["input"]) == (1, VIRGINICA)
    assert first["output"]["label"] == "setosa"
    assert second["output"]["label"] == "virginica"
    for prediction in body["predictions"]:
        probabilities = prediction["output"]["probabilities"]
        assert set(probabilities) == {"setosa", "versicolor", "virginica"}
        assert math.isclose(sum(probabilities.values()), 1.0, abs_tol=1e-6)
    assert body["invalid"] == []
    assert body["cost"] == 2
    assert body["task"]["model_version"] == models[IRIS]["version"]
    assert await balance(client, alice) == 8
    task = await (await client.get(f"/api/v1/tasks/{body['task']['id']}",
                                   headers=alice.auth)).json()
    assert task["model_version"] == models[IRIS]["version"]


async def test_a_mixed_batch_reports_each_bad_row_and_charges_only_the_valid_ones(
        client: Client) -> None:
    alice = await api_signup(client, "alice", top_up=100)
    rows: list[Any] = [PATIENT, {**PATIENT, "bmi": "fat", "extra": 1},
                       {k: v for k, v in PATIENT.items() if k != "s6"}, [1, 2, 3], PATIENT]

    response = await predict(client, alice, DIABETES, rows)

    assert response.status == 200, await response.text()
    body = await response.json()
    assert [p["index"] for p in body["predictions"]] == [0, 4]
    assert all(isinstance(p["output"], float) for p in body["predictions"])
    invalid = {i["index"]: i for i in body["invalid"]}
    assert set(invalid) == {1, 2, 3}
    assert invalid[1]["errors"] == {"bmi": ["not a number"],
                                    "extra": ["the model has no such feature"]}
    assert invalid[2]["errors"] == {"s6": ["the value is missing"]}
    assert "_row" in invalid[3]["errors"]
    assert body["cost"] == 2 * 3
    assert await balance(client, alice) == 94


async def test_a_csv_with_a_bom_semicolons_crlf_and_quotes_is_read_by_its_header(
        client: Client) -> None:
    alice = await api_signup(client, "alice", top_up=10)
    # Columns in another order than the model's, one bad row on line 3.
    text = ('\ufeff"petal_width";petal_length;sepal_width;sepal_length\r\n'
            '0.2;1.4;3.5;"5.1"\r\n'
            'wide;1.4;3.5;5.1\r\n'
            '2.3;5.2;3.0;6.7\r\n')

    response = await upload(client, alice, text.encode(), IRIS)

    assert response.status == 200, await response.text()
    body = await response.json()
    assert [(p["index"], p["output"]["label"]) for p in body["predictions"]] == [
        (0, "setosa"), (2, "virginica")]
    assert body["predictions"][0]["input"] == SETOSA
    [bad] = body["invalid"]
    assert (bad["index"], bad["line"], bad["errors"]) == (1, 3, {"petal_width": ["not a number"]})
    assert body["cost"] == 2


@pytest.mark.parametrize(("header", "words"), [
    ("sepal_length,sepal_width,petal_length,petal_width,colour", "colour"),
    ("sepal_length,sepal_width,petal_length", "petal_width"),
])
async def test_a_csv_whose_header_does_not_fit_is_refused_whole(
        client: Client, header: str, words: str) -> None:
    alice = await api_signup(client, "alice", top_up=10)
    response = await upload(client, alice, f"{header}\n5.1,3.5,1.4,0.2\n".encode(), IRIS)
    body = await expect_problem(response, 422, "bad_csv_header")
    assert words in body["detail"]
    assert await balance(client, alice) == 10


async def test_an_upload_without_one_valid_row_is_422_and_charges_nothing(
        client: Client) -> None:
    alice = await api_signup(client, "alice", top_up=10)
    text = "sepal_length,sepal_width,petal_length,petal_width\nx,1,1,1\n1,,1,1\n"
    body = await expect_problem(await upload(client, alice, text.encode(), IRIS), 422,
                                "no_valid_data")
    assert [(i["index"], i["line"]) for i in body["invalid"]] == [(0, 2), (1, 3)]
    assert await balance(client, alice) == 10


async def test_the_balance_must_cover_the_valid_rows_only(client: Client) -> None:
    alice = await api_signup(client, "alice", top_up=5)
    # 2 valid rows × 3 credits = 6 > 5: refused, though the two bad rows would cost nothing.
    body = await expect_problem(
        await predict(client, alice, DIABETES, [PATIENT, PATIENT, {}, "x"]), 402,
        "insufficient_balance")
    assert body["cost"] == 6
    assert await balance(client, alice) == 5
    ok = await predict(client, alice, DIABETES, [PATIENT, {}, "x"])
    assert ok.status == 200
    assert await balance(client, alice) == 2


async def test_the_doubler_charges_the_rows_it_could_double_and_reports_the_other(
        client: Client) -> None:
    alice = await api_signup(client, "alice", top_up=10)

    response = await predict(client, alice, 1, [1, 2, 1e308])

    assert response.status == 200, await response.text()
    body = await response.json()
    assert [(p["index"], p["output"]) for p in body["predictions"]] == [(0, 2.0), (1, 4.0)]
    [overflow] = body["invalid"]
    assert overflow["index"] == 2
    assert "not a finite number" in overflow["error"]
    assert body["cost"] == 2
    assert await balance(client, alice) == 8
    moves = await (await client.get("/api/v1/transactions", headers=alice.auth)).json()
    assert moves["data"][0]["amount"] == -2
    task = await (await client.get(f"/api/v1/tasks/{body['task']['id']}",
                                   headers=alice.auth)).json()
    assert [i["index"] for i in task["invalid"]] == [2]
    assert task["output_data"] == [2.0, 4.0, None]


async def test_a_retry_with_the_same_rows_in_another_key_order_is_the_same_request(
        client: Client) -> None:
    alice = await api_signup(client, "alice", top_up=10)
    first = await predict(client, alice, IRIS, [SETOSA], key="k-1")
    reordered = dict(reversed(list(SETOSA.items())))
    again = await predict(client, alice, IRIS, [reordered], key="k-1")
    assert (first.status, again.status) == (200, 200)
    assert (await first.json())["task"]["id"] == (await again.json())["task"]["id"]
    other = await predict(client, alice, IRIS, [{**SETOSA, "petal_width": 0.3}], key="k-1")
    await expect_problem(other, 422, "idempotency_key_reused")
    assert await balance(client, alice) == 9


class Broken(TabularModel):
    """A test-only model that fails as a whole, as a corrupt artifact or a runtime bug would."""

    def predict_rows(self, matrix: npt.NDArray[np.float32]) -> list[Outcome]:
        raise RuntimeError("the runtime crashed")


async def test_a_model_that_fails_as_a_whole_is_502_and_charges_nothing(
        aiohttp_client: Any, config: Config) -> None:
    manager = MLModelManager(catalogue(DEFAULT_MODELS_DIR))
    iris = manager.get_spec(IRIS)
    assert iris is not None
    manager.register(ModelSpec(id=9, name="Broken", description="fails",
                               price_per_item_credits=1, max_items=10, factory=Broken,
                               schema=iris.schema))
    client = await aiohttp_client(create_app(config, models=manager))
    alice = await api_signup(client, "alice", top_up=10)

    body = await expect_problem(await predict(client, alice, 9, [SETOSA]), 502,
                                "prediction_failed")

    assert "nothing was charged" in body["detail"]
    assert body["task"]["status"] == "failed"
    assert body["balance"] == {"balance": 10, "held": 0, "available": 10}


async def test_an_upload_with_a_file_and_pasted_data_is_refused_not_guessed(
        client: Client) -> None:
    alice = await api_signup(client, "alice", top_up=10)
    form = FormData()
    form.add_field("model_id", str(IRIS))
    form.add_field("data", "5.1 3.5 1.4 0.2")
    form.add_field("file", io.BytesIO(b"sepal_length,sepal_width,petal_length,petal_width\n"
                                      b"5.1,3.5,1.4,0.2\n"), filename="rows.csv")
    response = await client.post("/api/v1/predict", data=form, headers=alice.auth)
    body = await expect_problem(response, 422, "validation_error")
    assert "not both" in body["detail"]
    assert await balance(client, alice) == 10


async def test_pasted_rows_in_a_form_field_are_read_one_per_line(client: Client) -> None:
    alice = await api_signup(client, "alice", top_up=10)
    form = FormData(default_to_multipart=True)
    form.add_field("model_id", str(IRIS))
    form.add_field("data", "5.1, 3.5, 1.4, 0.2\n6.7 3.0 5.2 2.3\n1 2 3\n")
    response = await client.post("/api/v1/predict", data=form, headers=alice.auth)
    assert response.status == 200, await response.text()
    body = await response.json()
    assert [p["output"]["label"] for p in body["predictions"]] == ["setosa", "virginica"]
    assert body["predictions"][1]["input"] == dict(zip(SETOSA, VIRGINICA, strict=True))
    [short] = body["invalid"]
    assert short["index"] == 2 and "_row" in short["errors"]
