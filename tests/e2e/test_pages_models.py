"""The pages with the shipped models: what each model takes, result tables by feature, the
form kept after an error, and task pages of hundreds of rows that stay a readable size."""

from __future__ import annotations

import re
from html import unescape
from pathlib import Path
from typing import Any

import pytest
from aiohttp import FormData
from aiohttp.test_utils import TestClient
from cabinet_http import csrf_for, error_alerts, page_signup, section, stats, text_of

from ml import MLModelManager, catalogue
from web.app import create_app
from web.config import Config

Client = TestClient[Any, Any]
MODELS_DIR = Path(__file__).resolve().parents[2] / "models"
IRIS_HEADER = "sepal_length,sepal_width,petal_length,petal_width"
SETOSA, VIRGINICA = "5.1,3.5,1.4,0.2", "7.7,3.0,6.1,2.3"
DIABETES_ROW = "59 2 32.1 101 157 93.2 38 4 4.8598 87"


@pytest.fixture
async def client(aiohttp_client: Any, config: Config) -> Client:
    return await aiohttp_client(create_app(config, MLModelManager(catalogue(MODELS_DIR))))


async def signed_up(client: Client, credits: int) -> None:
    await page_signup(client, "alice")
    token = await csrf_for(client, "/cabinet")
    response = await client.post("/cabinet/top-up", data={
        "csrf_token": token, "amount": "custom", "custom_amount": str(credits)},
        allow_redirects=False)
    assert response.status == 303


async def send(client: Client, model_id: str, data: str = "", csv: str | None = None,
               filename: str = "data.csv", **kept: str) -> tuple[int, str]:
    """Submit the prediction form as a browser does; the status and the page shown after
    (the redirect followed on success)."""
    form = FormData()
    form.add_field("csrf_token", await csrf_for(client, "/cabinet"))
    form.add_field("model_id", model_id)
    form.add_field("data", data)
    for name, value in kept.items():
        form.add_field(name, value)
    if csv is None:
        form.add_field("file", b"", filename="", content_type="application/octet-stream")
    else:
        form.add_field("file", csv.encode(), filename=filename, content_type="text/csv")
    response = await client.post("/cabinet/predict", data=form)
    return response.status, await response.text()


def hidden(html: str, name: str) -> str | None:
    found = re.search(rf'<input type="hidden" name="{name}" value="([^"]*)"', html)
    return None if found is None else unescape(found.group(1))


def header_cells(html: str) -> list[str]:
    table = html[html.index("table-results"):]
    head = table[:table.index("</thead>")]
    return [text_of(cell) for cell in re.findall(r"<th scope=\"col\"[^>]*>(.*?)</th>", head)]


def body_rows(html: str) -> list[str]:
    table = html[html.index("table-results"):]
    body = table[table.index("<tbody>"):table.index("</tbody>")]
    return [text_of(row) for row in re.findall(r"<tr>(.*?)</tr>", body, re.S)]


async def test_the_home_page_shows_each_models_kind_features_labels_price_and_version(
        client: Client) -> None:
    specs = {spec.id: spec for spec in catalogue(MODELS_DIR)}

    html = await (await client.get("/")).text()

    cards = re.findall(r'<li class="model card">(.*?)</li>\s*(?=<li class="model card">|</ul>)',
                       html, re.S)
    assert len(cards) == 4
    iris, diabetes = text_of(cards[3]), text_of(cards[2])
    assert "Iris species" in iris and "Classification" in iris
    assert "sepal_length sepal_width petal_length petal_width" in iris
    assert "setosa versicolor virginica" in iris
    assert "1 credit per item" in iris and "up to 5,000 items per request" in iris
    assert specs[4].version in iris
    assert "Regression" in diabetes and "age sex bmi bp s1 s2 s3 s4 s5 s6" in diabetes
    assert "3 credits per item" in diabetes and specs[3].version in diabetes
    assert specs[1].version in text_of(cards[0])


async def test_the_form_shows_each_models_features_ranges_and_an_example_row(
        client: Client) -> None:
    await signed_up(client, 10)

    html = await (await client.get("/cabinet")).text()

    hints = dict(re.findall(r'<details class="model-hint" data-model-id="(\d+)"[^>]*>(.*?)'
                            r"</details>", html, re.S))
    assert sorted(hints) == ["1", "2", "3", "4"]
    iris = text_of(hints["4"])
    assert "sepal_length number 3.9 to 8.3" in iris
    assert "petal_width number 0.0 to 2.8" in iris
    assert "setosa, versicolor, virginica" in iris
    assert f"{IRIS_HEADER} 6.0, 3.0, 4.0, 1.0".replace(", ", ",") in iris.replace(", ", ",")
    diabetes = text_of(hints["3"])
    assert "age integer 13 to 85, whole" in diabetes
    assert "sex integer 1 or 2" in diabetes
    assert "49, 1, 30.0, 98.0" in diabetes
    assert "one number per item" in text_of(hints["1"])


async def test_an_iris_csv_with_a_bad_row_shows_labels_and_the_rows_reason(
        client: Client) -> None:
    await signed_up(client, 10)

    status, html = await send(client, "4", csv=f"{IRIS_HEADER}\n{SETOSA}\n5.9,3.0,oops,1.8\n"
                                             f"{VIRGINICA}\n")

    assert status == 200
    assert "Predicted 2 rows for 2 credits. 1 invalid row was skipped." in text_of(html)
    result = section(html, "result")
    assert header_cells(result) == ["Row", *IRIS_HEADER.split(","), "Label", "Probability"]
    setosa, virginica = body_rows(result)
    assert re.fullmatch(r"#1 5\.1 3\.5 1\.4 0\.2 setosa \d+\.\d %", setosa), setosa
    assert re.fullmatch(r"#3 7\.7 3\.0 6\.1 2\.3 virginica \d+\.\d %", virginica), virginica
    invalid = text_of(result[result.index("table-invalid"):]).replace(" :", ":")
    assert "Line 3" in invalid and "petal_length: not a number" in invalid
    assert stats(html)["Balance"] == 8


async def test_pasted_diabetes_rows_show_one_column_per_feature_and_the_number(
        client: Client) -> None:
    await signed_up(client, 10)

    pasted = f"{DIABETES_ROW}\n{DIABETES_ROW.replace('59', '48')}\n"

    status, html = await send(client, "3", data=pasted)

    assert status == 200
    result = section(html, "result")
    assert header_cells(result) == ["Row", "age", "sex", "bmi", "bp", "s1", "s2", "s3", "s4",
                                    "s5", "s6", "Prediction"]
    first, second = body_rows(result)
    # Integer features read as typed (59, 2); the output is the model's number.
    assert re.fullmatch(r"#1 59 2 32\.1 101\.0 157\.0 93\.2 38\.0 4\.0 4\.8598 87\.0 "
                        r"\d+\.\d+", first), first
    assert second.startswith("#2 48")
    assert stats(html)["Balance"] == 4


async def test_a_kept_file_survives_a_refusal_and_is_predicted_when_sent_again(
        client: Client) -> None:
    await signed_up(client, 5)
    csv = "age,sex,bmi,bp,s1,s2,s3,s4,s5,s6\n" + "\n".join(
        [DIABETES_ROW.replace(" ", ",")] * 2) + "\n"

    status, html = await send(client, "3", csv=csv, filename="patients.csv")

    assert status == 402
    assert error_alerts(html) == ["Not enough credits: this prediction costs 6 and 5 are "
                                  "available. Nothing was charged."]
    assert re.search(r'<option value="3" selected>', html)
    assert "patients.csv (2 rows) is kept — submit again or choose another file." in (
        text_of(html))
    assert hidden(html, "kept_file") == csv
    assert stats(html)["Balance"] == 5

    token = await csrf_for(client, "/cabinet")
    await client.post("/cabinet/top-up", data={"csrf_token": token, "amount": "10"})
    status, html = await send(client, "3", kept_file=csv, kept_file_name="patients.csv")

    assert status == 200
    assert "Predicted 2 rows for 6 credits." in text_of(html)
    assert stats(html)["Balance"] == 9


async def test_a_bad_csv_header_is_a_sentence_and_the_form_is_kept(client: Client) -> None:
    await signed_up(client, 10)

    status, html = await send(client, "4", csv="colour,petal_length\nred,1\n",
                              filename="flowers.csv")

    assert status == 422
    [message] = error_alerts(html)
    assert message.startswith("flowers.csv was not read: the header row names columns the "
                              "model does not have: colour;")
    assert message.endswith("Nothing was charged.")
    assert "flowers.csv (1 row) is kept" in text_of(html)
    assert re.search(r'<option value="4" selected>', html)
    assert re.search(r'<details class="model-hint" data-model-id="4"[^>]* open>', html)
    assert not re.search(r'<details class="model-hint" data-model-id="3"[^>]* open>', html)


async def test_too_many_rows_keep_the_pasted_text_and_say_the_limit(client: Client) -> None:
    await signed_up(client, 10)
    pasted = "\n".join(["5 3 1 0"] * 5001)  # short rows: the form's text field holds 64 kB

    status, html = await send(client, "4", data=pasted)

    assert status == 413
    [message] = error_alerts(html)
    assert "5,000" in message or "5000" in message
    assert message.endswith("Nothing was charged.")
    assert f">{pasted}</textarea>" in html
    assert stats(html)["Balance"] == 10


async def test_pasted_text_together_with_a_file_is_refused_and_nothing_is_charged(
        client: Client) -> None:
    await signed_up(client, 10)

    status, html = await send(client, "4", data=SETOSA, csv=f"{IRIS_HEADER}\n{SETOSA}\n")

    assert status == 422
    [message] = error_alerts(html)
    assert message.startswith("Paste values or upload a file, not both")
    assert "Nothing was charged." in message
    assert f">{SETOSA}</textarea>" in html
    assert "data.csv (1 row) is kept" in text_of(html)
    assert stats(html)["Balance"] == 10
    assert "No predictions yet" in html


async def test_a_task_of_600_rows_is_paged_and_stays_a_readable_size(client: Client) -> None:
    await signed_up(client, 1000)
    lines = [SETOSA if i % 2 else "5.1,3.5,x,0.2" for i in range(600)]
    status, cabinet = await send(client, "4", csv=IRIS_HEADER + "\n" + "\n".join(lines) + "\n")
    assert status == 200
    assert len(body_rows(section(cabinet, "result"))) == 10
    assert len(cabinet) < 100_000, len(cabinet)
    task_id = re.search(r'href="/cabinet/tasks/(tsk_[0-9a-z]{13})"', cabinet)
    assert task_id is not None

    first = await (await client.get(f"/cabinet/tasks/{task_id.group(1)}")).text()
    last = await (await client.get(
        f"/cabinet/tasks/{task_id.group(1)}?rows_page=6&invalid_page=6")).text()

    assert len(first) < 120_000, len(first)
    assert len(body_rows(section(first, "rows"))) == 50
    assert "Rows 1–50 of 300 · page 1 of 6" in text_of(section(first, "rows"))
    assert "Rows 251–300 of 300 · page 6 of 6" in text_of(section(last, "rows"))
    assert body_rows(section(last, "rows"))[-1].startswith("#600 ")
    # A feature model's inputs are rows (a one-number model's are items).
    assert "Valid rows 300" in text_of(first) and "Invalid rows 300" in text_of(first)
    assert header_cells(section(first, "rows"))[0] == "Row"
    invalid = text_of(section(last, "invalid")).replace(" :", ":")
    assert "Rows 251–300 of 300" in invalid and "Line 600" in invalid
    assert "petal_length: not a number" in invalid


async def test_an_all_invalid_upload_lists_every_reason_and_charges_nothing(
        client: Client) -> None:
    await signed_up(client, 10)

    status, html = await send(client, "4", csv=f"{IRIS_HEADER}\n9,3.5,1.4,0.2\n5.1,,1.4,x\n")

    assert status == 422
    assert error_alerts(html) == ["No row is valid; nothing was charged."]
    invalid = text_of(section(html, "result")).replace(" :", ":")
    assert "Line 2" in invalid and "sepal_length: the number is above the maximum of 8.3" in (
        invalid)
    assert "Line 3" in invalid and "sepal_width: the value is missing" in invalid
    assert "petal_width: not a number" in invalid
    assert "data.csv (2 rows) is kept" in text_of(html)
    assert stats(html)["Balance"] == 10
    assert "No predictions yet" in html


async def test_the_russian_home_page_describes_every_model_in_russian(client: Client) -> None:
    html = await (await client.get("/?lang=ru")).text()
    text = text_of(html)
    for russian in ("Умножает каждое число на два.", "Вид цветка ириса по длине и ширине",
                    "Количественная мера прогрессирования диабета"):
        assert russian in text
    for english in ("Multiplies every number", "The species of an iris", "Ridge regression"):
        assert english not in text
    assert "The species of an iris" in text_of(await (await client.get("/?lang=en")).text())


async def test_a_russian_result_table_writes_decimal_commas(client: Client) -> None:
    await signed_up(client, 10)
    await client.get("/cabinet?lang=ru")  # the choice is remembered in a cookie

    status, html = await send(client, "4", csv=f"{IRIS_HEADER}\n{SETOSA}\n")

    assert status == 200
    setosa, = body_rows(section(html, "result"))
    assert re.search(r"5,1 3,5 1,4 0,2 setosa \d+,\d %$", setosa), setosa
