"""Hostile input over HTTP: every refusal is a problem+json 4xx, never a 500, and a refused
request writes no event (rows in `events` are counted on the file before and after)."""

from __future__ import annotations

import io
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import FormData
from security_http import (
    Account,
    Client,
    balance,
    count_rows,
    csrf_from,
    expect_problem,
    new_account,
    page_login,
    scalar,
)

JSON = {"Content-Type": "application/json"}
MIB = 1024 * 1024


@pytest.fixture
async def alice(client: Client) -> Account:
    return await new_account(client, "alice", credits=1000)


# -- top-up amounts ------------------------------------------------------------------------

# Raw JSON text: Python's json module cannot write NaN-free 1e309 or 2**63 as a client would.
TOP_UP_BODIES = {
    "zero": '{"amount": 0}',
    "negative": '{"amount": -1}',
    "2**63": '{"amount": 9223372036854775808}',
    "over the maximum": '{"amount": 1000001}',
    "fraction": '{"amount": 1.5}',
    "whole float": '{"amount": 10.0}',
    "string": '{"amount": "10"}',
    "true": '{"amount": true}',
    "null": '{"amount": null}',
    "1e309": '{"amount": 1e309}',
    "NaN": '{"amount": NaN}',
    "list": '{"amount": [10]}',
    "missing field": "{}",
    "extra field": '{"amount": 10, "user_id": 2}',
}


@pytest.mark.parametrize("body", TOP_UP_BODIES.values(), ids=TOP_UP_BODIES.keys())
async def test_a_hostile_top_up_amount_is_refused_and_writes_no_event(
        client: Client, alice: Account, db_path: Path, body: str) -> None:
    events = count_rows(db_path)

    response = await client.post("/api/v1/balance/top-up", data=body,
                                 headers={**alice.auth, **JSON})

    problem = await expect_problem(response, 422, "validation_error")
    assert problem["errors"]
    assert count_rows(db_path) == events
    assert (await balance(client, alice))["balance"] == 1000


# -- prediction items ----------------------------------------------------------------------

# raw JSON item -> the reason the ledger reports for it
BAD_ITEMS = {
    "true": "a boolean is not a number",
    '"nan"': "not a number",  # the same words as a CSV cell or pasted text that is no number
    '"12"': "not a number",
    "NaN": "NaN is not a number",
    "Infinity": "the number is infinite or beyond the float range",
    "-Infinity": "the number is infinite or beyond the float range",
    "1e400": "the number is infinite or beyond the float range",
    "1" + "0" * 400: "the number is infinite or beyond the float range",
    "null": "null is not a number",
    "[1, 2]": "a list is not a number",
    "[[[[[[1]]]]]]": "a list is not a number",
    '{"value": 1}': "an object is not a number",
}


def predict_body(items: list[str]) -> str:
    return '{"model_id": 1, "data": [' + ", ".join(items) + "]}"


@pytest.mark.parametrize(("item", "reason"), BAD_ITEMS.items(), ids=BAD_ITEMS.keys())
async def test_an_item_that_is_not_a_finite_number_alone_is_refused_with_its_reason(
        client: Client, alice: Account, db_path: Path, item: str, reason: str) -> None:
    events = count_rows(db_path)

    response = await client.post("/api/v1/predict", data=predict_body([item]),
                                 headers={**alice.auth, **JSON})

    problem = await expect_problem(response, 422, "no_valid_data")
    assert [(i["index"], i["error"]) for i in problem["invalid"]] == [(0, reason)]
    assert count_rows(db_path) == events


async def test_every_invalid_item_is_reported_with_its_index(
        client: Client, alice: Account, db_path: Path) -> None:
    events = count_rows(db_path)

    response = await client.post("/api/v1/predict", data=predict_body(list(BAD_ITEMS)),
                                 headers={**alice.auth, **JSON})

    problem = await expect_problem(response, 422, "no_valid_data")
    assert [(i["index"], i["error"]) for i in problem["invalid"]] == list(
        enumerate(BAD_ITEMS.values()))
    assert count_rows(db_path) == events
    assert (await balance(client, alice))["balance"] == 1000


async def test_with_a_valid_number_among_them_only_the_valid_one_is_charged(
        client: Client, alice: Account, db_path: Path) -> None:
    items = list(BAD_ITEMS)
    middle = len(items) // 2
    items.insert(middle, "4")

    response = await client.post("/api/v1/predict", data=predict_body(items),
                                 headers={**alice.auth, **JSON})

    assert response.status == 200, await response.text()
    result = await response.json()
    assert result["predictions"] == [{"index": middle, "input": 4.0, "output": 8.0}]
    assert [i["index"] for i in result["invalid"]] == [i for i in range(len(items))
                                                       if i != middle]
    assert result["cost"] == 1
    assert (await balance(client, alice))["balance"] == 999
    assert scalar(db_path, "SELECT SUM(amount_credits) FROM transactions WHERE kind = 'charge'"
                  ) == -1


async def test_a_deeply_nested_item_is_reported_not_fatal(
        client: Client, alice: Account) -> None:
    nested = "[" * 500 + "]" * 500

    response = await client.post("/api/v1/predict", data=predict_body(["1", nested]),
                                 headers={**alice.auth, **JSON})

    assert response.status == 200, await response.text()
    assert (await response.json())["invalid"][0]["error"] == "a list is not a number"


# -- bodies that are not JSON objects ------------------------------------------------------

MALFORMED = {
    "empty": (b"", 400),
    "truncated": (b'{"model_id": 1, "data": [1,', 400),
    "single quotes": (b"{'amount': 1}", 400),
    "not UTF-8": (b'{"amount": "\xff\xfe"}', 400),
    "UTF-16": ('{"amount": 1}'.encode("utf-16"), 400),
    "a list": (b"[]", 422),
    "a string": (b'"text"', 422),
    "a number": (b"42", 422),
    "null": (b"null", 422),
    "100000 brackets": (b"[" * 100_000, 400),
    "100000 nested objects": (b'{"a":' * 100_000 + b"1" + b"}" * 100_000, 400),
}
ENDPOINTS = ["/api/v1/predict", "/api/v1/balance/top-up", "/api/v1/auth/register",
             "/api/v1/auth/login"]


@pytest.mark.parametrize("endpoint", ENDPOINTS)
@pytest.mark.parametrize(("body", "status"), MALFORMED.values(), ids=MALFORMED.keys())
async def test_a_body_that_is_not_a_json_object_is_a_client_error(
        client: Client, alice: Account, db_path: Path, endpoint: str, body: bytes,
        status: int) -> None:
    events = count_rows(db_path)

    response = await client.post(endpoint, data=body, headers={**alice.auth, **JSON})

    await expect_problem(response, status, "malformed_json", "validation_error")
    assert count_rows(db_path) == events


@pytest.mark.parametrize("endpoint", ENDPOINTS)
@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded",
                                          "application/xml", "application/json-patch+json"])
async def test_a_body_that_is_not_json_is_refused_as_unsupported(
        client: Client, alice: Account, db_path: Path, endpoint: str, content_type: str) -> None:
    events = count_rows(db_path)

    response = await client.post(endpoint, data=b'{"amount": 10}',
                                 headers={**alice.auth, "Content-Type": content_type})

    await expect_problem(response, 415, "unsupported_media_type")
    assert count_rows(db_path) == events


# -- sizes -----------------------------------------------------------------------------------

@pytest.mark.parametrize("endpoint", ENDPOINTS)
async def test_a_twenty_mebibyte_body_is_refused_before_it_is_read(
        client: Client, alice: Account, db_path: Path, endpoint: str) -> None:
    events = count_rows(db_path)
    body = io.BytesIO(b'{"data": [' + b"1," * (10 * MIB) + b"1]}")

    response = await client.post(endpoint, data=body, headers={**alice.auth, **JSON})

    await expect_problem(response, 413, "payload_too_large")
    assert count_rows(db_path) == events


@pytest.mark.parametrize("count", [1001, 1_000_000])
async def test_too_many_items_are_refused_whole(
        client: Client, alice: Account, db_path: Path, count: int) -> None:
    events = count_rows(db_path)

    body = io.BytesIO(predict_body(["0"] * count).encode())

    response = await client.post("/api/v1/predict", data=body, headers={**alice.auth, **JSON})

    await expect_problem(response, 413, "too_many_items", "payload_too_large")
    assert count_rows(db_path) == events


async def chunks(total_bytes: int) -> AsyncIterator[bytes]:
    """A CSV streamed in 64 KiB chunks, so no Content-Length tells the server its size."""
    row = b"1.5,2.5,3.5\n"
    chunk = row * (64 * 1024 // len(row))
    sent = 0
    while sent < total_bytes:
        yield chunk
        sent += len(chunk)


def upload(file: Any, *, model_id: str = "1", **fields: str) -> FormData:
    form = FormData()
    form.add_field("model_id", model_id)
    for name, value in fields.items():
        form.add_field(name, value)
    form.add_field("file", file, filename="data.csv", content_type="text/csv")
    return form


@pytest.mark.parametrize("size", [MIB + 64 * 1024, 3 * MIB], ids=["over the upload limit",
                                                                 "over the body limit too"])
async def test_a_streamed_csv_over_a_mebibyte_is_stopped_by_our_own_count(
        client: Client, alice: Account, db_path: Path, size: int) -> None:
    events = count_rows(db_path)

    response = await client.post("/api/v1/predict", data=upload(chunks(size)),
                                 headers=alice.auth)

    problem = await expect_problem(response, 413, "payload_too_large")
    assert problem["detail"] == "the file is larger than 1,048,576 bytes"
    assert count_rows(db_path) == events


async def test_an_oversized_form_field_is_stopped_too(
        client: Client, alice: Account, db_path: Path) -> None:
    events = count_rows(db_path)
    form = FormData({"model_id": "1", "data": "1 " * (64 * 1024)}, default_to_multipart=True)

    response = await client.post("/api/v1/predict", data=form, headers=alice.auth)

    await expect_problem(response, 413, "payload_too_large")
    assert count_rows(db_path) == events


MALFORMED_MULTIPART = {
    "no boundary in the body": b"garbage",
    "a part header that is not Latin-1 text":
        b'--XX\r\nContent-Disposition: form-data; name="\xc3\xa9\x01"\r\n\r\n1\r\n--XX--\r\n',
    "a header line without a colon": b'--XX\r\nContent-Disposition: form-data; name="model_id"'
                                     b"\r\nBad line\r\n\r\n1\r\n--XX--\r\n",
    "cut off": b'--XX\r\nContent-Disposition: form-data; name="model_id"\r\n\r\n1',
    "nested multipart": b"--XX\r\nContent-Type: multipart/mixed; boundary=YY\r\n\r\n"
                        b"--YY\r\n\r\nx\r\n--YY--\r\n--XX--\r\n",
}


@pytest.mark.parametrize("body", MALFORMED_MULTIPART.values(), ids=MALFORMED_MULTIPART.keys())
async def test_malformed_multipart_is_a_bad_request(
        client: Client, alice: Account, db_path: Path, body: bytes) -> None:
    events = count_rows(db_path)

    response = await client.post("/api/v1/predict", data=body, headers={
        **alice.auth, "Content-Type": "multipart/form-data; boundary=XX"})

    await expect_problem(response, 400, "bad_request")
    assert count_rows(db_path) == events


@pytest.mark.parametrize("body", MALFORMED_MULTIPART.values(), ids=MALFORMED_MULTIPART.keys())
async def test_malformed_multipart_on_the_predict_form_is_a_message_not_a_crash(
        client: Client, alice: Account, db_path: Path, body: bytes) -> None:
    await page_login(client, "alice")
    events = count_rows(db_path)

    response = await client.post("/cabinet/predict", data=body, allow_redirects=False,
                                 headers={"Content-Type": "multipart/form-data; boundary=XX"})

    assert response.status == 303
    assert count_rows(db_path) == events


async def test_a_csv_that_is_not_utf8_is_refused(
        client: Client, alice: Account, db_path: Path) -> None:
    events = count_rows(db_path)

    response = await client.post("/api/v1/predict", headers=alice.auth,
                                 data=upload("1,2,café\n".encode("latin-1")))

    problem = await expect_problem(response, 422, "validation_error")
    assert "file" in problem["errors"]
    assert count_rows(db_path) == events


async def test_a_small_csv_with_a_header_is_predicted(client: Client, alice: Account) -> None:
    response = await client.post("/api/v1/predict", headers=alice.auth,
                                 data=upload(b"value\n1\n2\nnan\n"))

    assert response.status == 200, await response.text()
    result = await response.json()
    assert [p["output"] for p in result["predictions"]] == [2.0, 4.0]
    assert [(i["index"], i["value"]) for i in result["invalid"]] == [(2, "nan")]


async def test_unknown_fields_in_a_prediction_are_refused_uncharged(
        client: Client, alice: Account, db_path: Path) -> None:
    events = count_rows(db_path)

    as_json = await client.post("/api/v1/predict", headers=alice.auth, json={
        "model_id": 1, "data": [1], "user_id": 2, "cost": 0})
    as_form = await client.post("/api/v1/predict", headers=alice.auth,
                                data=upload(b"1\n", user_id="2", cost="0"))

    for response in (as_json, as_form):
        problem = await expect_problem(response, 422, "validation_error")
        assert {"user_id", "cost"} <= set(problem["errors"])
    assert count_rows(db_path) == events


# -- numbers in paths, queries and form fields ---------------------------------------------

# "²" and "٣" pass str.isdigit(); only one of them is accepted by int().
ODD_DIGITS = ["²", "٣", "0", "-1", "1.0", "1e3", "9" * 30, "%00", "1%0A"]


@pytest.mark.parametrize("task_id", ODD_DIGITS)
async def test_an_odd_task_id_is_not_found_over_the_api(
        client: Client, alice: Account, task_id: str) -> None:
    response = await client.get(f"/api/v1/tasks/{task_id}", headers=alice.auth)

    await expect_problem(response, 404, "task_not_found")


@pytest.mark.parametrize("task_id", ODD_DIGITS)
async def test_an_odd_task_id_is_not_found_on_the_page(
        client: Client, alice: Account, task_id: str) -> None:
    await page_login(client, "alice")

    response = await client.get(f"/cabinet/tasks/{task_id}")

    assert response.status == 404
    assert response.content_type == "text/html"


@pytest.mark.parametrize("query", ["limit=0", "limit=101", "limit=abc", "limit=²",
                                   "starting_after=0", "starting_after=" + "9" * 5000,
                                   "limit=1.5"])
async def test_an_odd_page_query_is_refused(client: Client, alice: Account, query: str) -> None:
    response = await client.get(f"/api/v1/tasks?{query}", headers=alice.auth)

    await expect_problem(response, 422, "validation_error")


@pytest.mark.parametrize("page", ["²", "٣", "-1", "0", "99999999999"])
async def test_an_odd_page_number_in_the_cabinet_shows_a_page(
        client: Client, alice: Account, page: str) -> None:
    await page_login(client, "alice")

    response = await client.get("/cabinet", params={"tasks_page": page, "tx_page": page})

    assert response.status == 200


@pytest.mark.parametrize("model_id", ["²", "٣", "", "-1", "1.0", "9" * 20])
async def test_an_odd_model_id_in_an_upload_is_refused(
        client: Client, alice: Account, db_path: Path, model_id: str) -> None:
    events = count_rows(db_path)

    response = await client.post("/api/v1/predict", headers=alice.auth,
                                 data=upload(b"1,2\n", model_id=model_id))

    assert response.status in (404, 422)
    await expect_problem(response, response.status, "validation_error", "model_not_found")
    assert count_rows(db_path) == events


@pytest.mark.parametrize("amount", ["²", "-5", "1e3", "", "0x10", "9" * 12])
async def test_an_odd_amount_in_the_top_up_form_changes_nothing(
        client: Client, alice: Account, db_path: Path, amount: str) -> None:
    await page_login(client, "alice")
    token = await csrf_from(client, "/cabinet")
    events = count_rows(db_path)

    response = await client.post("/cabinet/top-up", allow_redirects=False, data={
        "csrf_token": token, "amount": "custom", "custom_amount": amount})

    assert response.status == 303
    assert count_rows(db_path) == events


@pytest.mark.parametrize("model_id", ["²", "٣", "0", "-1"])
async def test_an_odd_model_id_in_the_predict_form_changes_nothing(
        client: Client, alice: Account, db_path: Path, model_id: str) -> None:
    await page_login(client, "alice")
    token = await csrf_from(client, "/cabinet")
    events = count_rows(db_path)
    form = FormData({"csrf_token": token, "model_id": model_id, "data": "1 2 3"},
                    default_to_multipart=True)

    response = await client.post("/cabinet/predict", data=form, allow_redirects=False)

    # The form is shown again with its values and a sentence (issue 7), not redirected empty.
    assert response.status in (404, 422)
    html = await response.text()
    assert "Nothing was charged." in html or "Choose a model from the list." in html
    assert ">1 2 3</textarea>" in html
    assert count_rows(db_path) == events


@pytest.mark.parametrize("key", ["", " ", "k" * 256, "ключ", "a b", "tab\there"])
async def test_a_malformed_idempotency_key_is_refused_before_any_charge(
        client: Client, alice: Account, db_path: Path, key: str) -> None:
    events = count_rows(db_path)

    response = await client.post("/api/v1/predict", json={"model_id": 1, "data": [1]},
                                 headers={**alice.auth, "Idempotency-Key": key})

    await expect_problem(response, 422, "validation_error")
    assert count_rows(db_path) == events


# -- registration ----------------------------------------------------------------------------

@pytest.mark.parametrize("extra", [{"balance": 1_000_000}, {"id": 1}, {"is_admin": True},
                                   {"user_id": 1, "held": -5}])
async def test_unknown_registration_fields_are_refused(
        client: Client, db_path: Path, extra: dict[str, Any]) -> None:
    events = count_rows(db_path)

    response = await client.post("/api/v1/auth/register", json={
        "username": "mallory", "password": "long enough password", **extra})

    problem = await expect_problem(response, 422, "validation_error")
    assert set(extra) <= set(problem["errors"])
    assert count_rows(db_path) == events
    assert count_rows(db_path, "accounts") == 0


BAD_USERNAMES = {
    "empty": "", "2 chars": "ab", "33 chars": "a" * 33, "zero-width": "ali\u200bce",
    "bidi override": "\u202eecila", "mixed alphabets": "ünïcödé\u0434",
    "lookalike": "аlice", "space": "al ice", "10 KB": "x" * 10_240, "newline": "alice\n",
    "NUL": "ali\x00ce", "markup": "<b>x</b>", "path": "../alice", "number": 12345,
    "null": None, "list": ["alice"],
}
BAD_PASSWORDS = {"7 chars": "x" * 7, "257 chars": "x" * 257, "1 MB": "x" * 1_000_000,
                 "number": 12345678, "null": None}


@pytest.mark.parametrize("username", BAD_USERNAMES.values(), ids=BAD_USERNAMES.keys())
async def test_an_extreme_username_is_refused_without_an_event(
        client: Client, db_path: Path, username: Any) -> None:
    events = count_rows(db_path)

    response = await client.post("/api/v1/auth/register", json={
        "username": username, "password": "long enough password"})

    problem = await expect_problem(response, 422, "validation_error")
    assert "username" in problem["errors"]
    assert count_rows(db_path) == events


@pytest.mark.parametrize("password", BAD_PASSWORDS.values(), ids=BAD_PASSWORDS.keys())
async def test_an_extreme_password_is_refused_without_an_event(
        client: Client, db_path: Path, password: Any) -> None:
    events = count_rows(db_path)

    body = json.dumps({"username": "mallory", "password": password}).encode()

    response = await client.post("/api/v1/auth/register", data=io.BytesIO(body), headers=JSON)

    problem = await expect_problem(response, 422, "validation_error")
    assert "password" in problem["errors"]
    assert count_rows(db_path) == events


async def test_a_password_over_the_body_limit_is_refused_as_too_large(
        client: Client, db_path: Path) -> None:
    body = json.dumps({"username": "mallory", "password": "x" * (3 * MIB)}).encode()

    response = await client.post("/api/v1/auth/register", data=io.BytesIO(body), headers=JSON)

    await expect_problem(response, 413, "payload_too_large")
    assert count_rows(db_path) == 0


@pytest.mark.parametrize("username", ["ab", "a" * 33, "ünïcödé\u0434", "x" * 10_240, "<b>x</b>"])
async def test_an_extreme_username_on_the_register_page_is_refused_without_an_event(
        client: Client, db_path: Path, username: str) -> None:
    token = await csrf_from(client, "/register")

    response = await client.post("/register", allow_redirects=False, data={
        "csrf_token": token, "username": username, "password": "long enough password"})

    assert response.status == 422
    assert count_rows(db_path) == 0


# Lone surrogates: json.loads accepts "\ud800", but such text can be neither hashed, stored
# as UTF-8, nor given to argon2. Each endpoint refuses it as malformed, writing nothing.
SURROGATE_BODIES = {
    "a data item": ("/api/v1/predict", '{"model_id": 1, "data": [1, "\\ud800"]}'),
    "a registration password": ("/api/v1/auth/register",
                                '{"username": "mallory", "password": "pass\\udfffword"}'),
    "a login password": ("/api/v1/auth/login",
                         '{"username": "alice", "password": "pass\\ud800word"}'),
}


@pytest.mark.parametrize(("endpoint", "body"), SURROGATE_BODIES.values(),
                         ids=SURROGATE_BODIES.keys())
async def test_a_lone_surrogate_is_malformed_json_not_a_crash(
        client: Client, alice: Account, db_path: Path, endpoint: str, body: str) -> None:
    events = count_rows(db_path)

    response = await client.post(endpoint, data=body, headers={**JSON, **alice.auth})

    await expect_problem(response, 400, "malformed_json")
    assert count_rows(db_path) == events
    assert (await balance(client, alice))["balance"] == 1000


def raw_multipart(*parts: tuple[str, str | None, bytes]) -> bytes:
    body = b""
    for name, filename, content in parts:
        disposition = f'form-data; name="{name}"' + (f'; filename="{filename}"' if filename
                                                     else "")
        body += f"--XX\r\nContent-Disposition: {disposition}\r\n\r\n".encode() + content + b"\r\n"
    return body + b"--XX--\r\n"


SPRAWLING_FORMS = {
    "forty file parts": [("model_id", None, b"1")] + [("file", "a.csv", b"1\n" * 1000)] * 40,
    "two files": [("model_id", None, b"1"), ("file", "a.csv", b"1\n"), ("file", "b.csv", b"2\n")],
    "a field sent twice": [("model_id", None, b"1"), ("data", None, b"1"), ("data", None, b"2")],
    "forty unnamed parts": [("model_id", None, b"1")] + [("", None, b"x" * 1000)] * 40,
    "one large unnamed part": [("model_id", None, b"1"), ("", None, b"x" * 300_000),
                               ("data", None, b"1")],
}


@pytest.mark.parametrize("parts", SPRAWLING_FORMS.values(), ids=SPRAWLING_FORMS.keys())
async def test_a_form_cannot_grow_past_its_parts(
        client: Client, alice: Account, db_path: Path, parts: list[Any]) -> None:
    """Every part is bounded and so is their number, so the whole body is bounded too."""
    events = count_rows(db_path)

    response = await client.post("/api/v1/predict", data=raw_multipart(*parts), headers={
        **alice.auth, "Content-Type": "multipart/form-data; boundary=XX"})

    await expect_problem(response, 400, "bad_request")
    assert count_rows(db_path) == events
    assert (await balance(client, alice))["balance"] == 1000
