"""Exports and statements over HTTP, on both stores: an export holds exactly the rows the
paged API shows (CSV and JSON), bad ranges are 422 problems, and a statement adds up to the
live balance."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime
from typing import Any

from aiohttp.test_utils import TestClient
from cabinet_http import PASSWORD, ApiUser, api_signup, expect_problem

from ledger import LedgerService, Passwords, UserService, ledger_store_at
from ml import MLModelManager, MLService, default_models
from web.app import create_app
from web.config import Config
from web.exports import TASK_COLUMNS, TRANSACTION_COLUMNS, cell
from web.keys import ADMIN

Client = TestClient[Any, Any]


async def paged(client: Client, user: ApiUser, path: str) -> list[dict[str, Any]]:
    """Every item of a paged listing, walked by cursor three at a time (newest first)."""
    items: list[dict[str, Any]] = []
    query = "?limit=3"
    while True:
        response = await client.get(f"{path}{query}", headers=user.auth)
        assert response.status == 200, await response.text()
        body = await response.json()
        items += body["data"]
        if not body["has_more"]:
            return items
        query = f"?limit=3&starting_after={items[-1]['id']}"


async def history(client: Client, username: str = "alice") -> ApiUser:
    """Top-ups, completed predictions with invalid items, and a rejected one."""
    user = await api_signup(client, username, top_up=20)
    for data in ([1, 2, 3], [4, "x", 5], [{"a": 1}, 6], [7] * 20):
        response = await client.post("/api/v1/predict", json={"model_id": 1, "data": data},
                                     headers=user.auth)
        assert response.status in (200, 402), await response.text()
    await client.post("/api/v1/balance/top-up", json={"amount": 7}, headers=user.auth)
    return user


async def export(client: Client, user: ApiUser, what: str, query: str = "") -> Any:
    response = await client.get(f"/api/v1/{what}/export{query}", headers=user.auth)
    assert response.status == 200, await response.text()
    return response


def csv_rows(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text, newline="")))


def as_csv(item: dict[str, Any], columns: tuple[str, ...]) -> dict[str, str]:
    return {name: str(cell(item[name])) for name in columns}


async def test_the_transaction_export_is_the_paged_api_row_for_row(client: Client) -> None:
    alice = await history(client)
    await history(client, "bob")  # another user's rows never show
    shown = list(reversed(await paged(client, alice, "/api/v1/transactions")))
    assert [t["kind"] for t in shown] == ["top_up", "charge", "charge", "charge", "top_up"]

    as_json = await export(client, alice, "transactions", "?format=json")
    assert as_json.content_type == "application/json"
    assert await as_json.json() == shown

    response = await export(client, alice, "transactions")  # csv by default
    assert response.content_type == "text/csv" and response.charset == "utf-8"
    assert response.headers["Content-Disposition"] == (
        'attachment; filename="ml-cabinet-transactions-all.csv"')
    raw = await response.read()
    assert raw.startswith(b"id,created_at,kind,amount,balance_after,description,task_id\r\n")
    assert raw.endswith(b"\r\n") and raw.count(b"\r\n") == len(shown) + 1
    assert csv_rows(raw.decode("utf-8")) == [as_csv(t, TRANSACTION_COLUMNS) for t in shown]


async def test_the_task_export_is_the_paged_api_row_for_row(client: Client) -> None:
    alice = await history(client)
    shown = list(reversed(await paged(client, alice, "/api/v1/tasks")))
    assert [t["status"] for t in shown] == ["completed", "completed", "completed", "rejected"]

    assert await (await export(client, alice, "tasks", "?format=json")).json() == shown
    rows = csv_rows(await (await export(client, alice, "tasks", "?format=csv")).text())
    assert rows == [as_csv(t, TASK_COLUMNS) for t in shown]
    # A list is one cell of JSON: it reads back as what the API shows.
    assert [json.loads(r["invalid"]) for r in rows] == [t["invalid"] for t in shown]
    assert rows[-1]["output_data"] == "" and rows[-1]["error"] == "insufficient_balance"


async def test_more_tasks_than_one_page_stream_in_order(client: Client) -> None:
    alice = await api_signup(client, "alice", top_up=1_000)
    for n in range(57):  # past one page of 50
        response = await client.post("/api/v1/predict", json={"model_id": 1, "data": [n]},
                                     headers=alice.auth)
        assert response.status == 200
    shown = list(reversed(await paged(client, alice, "/api/v1/tasks")))
    exported = await (await export(client, alice, "tasks", "?format=json")).json()
    assert exported == shown and len(exported) == 57


async def test_a_range_of_today_holds_everything_and_one_in_the_past_nothing(
        client: Client) -> None:
    alice = await history(client)
    today = datetime.now(UTC).date().isoformat()  # a new account is in UTC
    everything = await (await export(client, alice, "transactions", "?format=json")).json()
    todays = await export(client, alice, "transactions", f"?format=json&from={today}&to={today}")
    assert await todays.json() == everything
    assert todays.headers["Content-Disposition"].endswith(
        f'filename="ml-cabinet-transactions-{today}-to-{today}.json"')
    old = await export(client, alice, "transactions", "?from=2020-01-01&to=2020-12-31")
    assert await old.text() == ",".join(TRANSACTION_COLUMNS) + "\r\n"
    assert await (await export(client, alice, "tasks", "?format=json&to=2020-12-31")).json() == []


async def test_bad_ranges_are_422_problems(client: Client) -> None:
    alice = await api_signup(client, "alice")
    for path in ("/api/v1/transactions/export", "/api/v1/tasks/export", "/api/v1/statement"):
        for query, field in (("from=2026-02-30", "from"), ("to=26-1-1", "to"),
                             ("from=2026-12-02&to=2026-12-01", "from"), ("from=", "from"),
                             ("to=1969-12-31", "to"), ("from=20261201", "from")):
            response = await client.get(f"{path}?{query}", headers=alice.auth)
            problem = await expect_problem(response, 422, "validation_error")
            assert field in problem["errors"], (path, query, problem)
    for fmt in ("xlsx", "CSV", ""):
        response = await client.get(f"/api/v1/transactions/export?format={fmt}",
                                    headers=alice.auth)
        assert "format" in (await expect_problem(response, 422, "validation_error"))["errors"]


async def test_exports_need_a_credential(client: Client) -> None:
    for path in ("/api/v1/transactions/export", "/api/v1/tasks/export", "/api/v1/statement"):
        await expect_problem(await client.get(path), 401, "unauthorized")
        await expect_problem(await client.get(path, headers={"Authorization": "Bearer nope"}),
                             401, "unauthorized")


async def test_a_read_key_exports(client: Client) -> None:
    alice = await history(client)
    made = await client.post("/api/v1/keys", json={"name": "books", "scope": "read"},
                             headers=alice.auth)
    key = (await made.json())["key"]
    response = await client.get("/api/v1/transactions/export?format=json",
                                headers={"Authorization": f"Bearer {key}"})
    assert response.status == 200 and len(await response.json()) == 5


async def statement_of(client: Client, user: ApiUser, query: str = "") -> dict[str, Any]:
    response = await client.get(f"/api/v1/statement{query}", headers=user.auth)
    assert response.status == 200, await response.text()
    body: dict[str, Any] = await response.json()
    return body


async def test_the_statement_adds_up_to_the_live_balance(client: Client) -> None:
    alice = await history(client)
    body = await statement_of(client, alice)
    today = datetime.now(UTC).date().isoformat()
    assert (body["from"], body["to"], body["time_zone"]) == (today, today, "UTC")
    assert list(body) == ["from", "to", "time_zone", "opening_balance", "movements",
                          "total_in", "total_out", "closing_balance"]
    moves = body["movements"]
    assert body["opening_balance"] == 0 and (body["total_in"], body["total_out"]) == (27, 6)
    assert body["closing_balance"] == body["opening_balance"] + sum(m["amount"] for m in moves)
    balance = await (await client.get("/api/v1/balance", headers=alice.auth)).json()
    assert body["closing_balance"] == balance["balance"] == moves[-1]["balance_after"] == 21
    shown = list(reversed(await paged(client, alice, "/api/v1/transactions")))
    assert [(m["id"], m["amount"], m["balance_after"], m["time"], m["kind"], m["task_id"])
            for m in moves] == [(t["id"], t["amount"], t["balance_after"], t["created_at"],
                                 t["kind"], t["task_id"]) for t in shown]


async def test_a_statement_of_days_before_the_account_is_empty(client: Client) -> None:
    alice = await history(client)
    body = await statement_of(client, alice, "?to=2020-01-31")
    assert (body["from"], body["to"]) == ("2020-01-31", "2020-01-31")
    assert (body["opening_balance"], body["movements"], body["closing_balance"]) == (0, [], 0)
    later = await statement_of(client, alice, "?from=2999-01-01")
    assert later["to"] == "2999-01-01" and later["movements"] == []
    assert later["opening_balance"] == later["closing_balance"] == 21


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


async def moscow_history(config: Config) -> None:
    """Written before the server starts, at chosen instants: either side of Moscow's midnight
    (21:00 UTC), a movement and a prediction each."""
    clock = Clock(datetime(2026, 11, 30, 12, tzinfo=UTC))
    store = ledger_store_at(config.store_at, clock=clock)
    await store.open()
    try:
        ledger = LedgerService(store)
        user = await UserService(ledger, Passwords.cheap()).register("ivan", PASSWORD)
        await ledger.set_time_zone(user.id, "Europe/Moscow")
        ml = MLService(ledger, MLModelManager(default_models()))
        for when, amount in ((datetime(2026, 11, 30, 20, 59, 59, 999999, tzinfo=UTC), 10),
                             (datetime(2026, 11, 30, 21, tzinfo=UTC), 20),
                             (datetime(2026, 12, 1, 21, tzinfo=UTC), 40)):
            clock.now = when
            await ledger.top_up(user.id, amount)
            await ml.process_task(user.id, 1, [amount])
    finally:
        await store.close()


async def test_the_range_is_the_accounts_own_days(config: Config, aiohttp_client: Any) -> None:
    await moscow_history(config)
    client = await aiohttp_client(create_app(config))
    login = await client.post("/api/v1/auth/login",
                              json={"username": "ivan", "password": PASSWORD})
    ivan = ApiUser(0, "ivan", (await login.json())["access_token"])
    day = "?format=json&from=2026-12-01&to=2026-12-01"
    moves = await (await export(client, ivan, "transactions", day)).json()
    assert [(m["kind"], m["amount"], m["created_at"]) for m in moves] == [
        ("top_up", 20, "2026-11-30T21:00:00.000000+00:00"),
        ("charge", -1, "2026-11-30T21:00:00.000000+00:00")]
    tasks = await (await export(client, ivan, "tasks", day)).json()
    assert [t["input_data"] for t in tasks] == [[20]]
    body = await statement_of(client, ivan, "?from=2026-12-01&to=2026-12-01")
    assert (body["time_zone"], body["opening_balance"], body["total_in"], body["total_out"],
            body["closing_balance"]) == ("Europe/Moscow", 9, 20, 1, 28)
    november = await (await export(client, ivan, "transactions", "?format=json&to=2026-11-30")
                      ).json()
    assert [m["amount"] for m in november] == [10, -1]


async def test_text_a_spreadsheet_would_run_opens_as_text_in_csv_and_exact_in_json(
        client: Client) -> None:
    """An operator's adjustment reason is free text that lands in the user's file: in CSV a
    formula must not run when the user opens it; a negative amount stays a number."""
    olga = await api_signup(client, "olga")
    assert await client.app[ADMIN].set_role("olga", True, "test")
    ada = await api_signup(client, "ada", top_up=10)
    reasons = ['=HYPERLINK("http://evil.example","refund")', "-5 clawback", "@SUM(A1)",
               "+1 bonus", "plain refund"]
    for n, reason in enumerate(reasons):
        amount = -1 if reason.startswith("-") else 1
        made = await client.post(f"/api/v1/admin/users/{ada.id}/adjustments",
                                 json={"amount_credits": amount, "reason": reason},
                                 headers={**olga.auth, "Idempotency-Key": f"adj-{n}"})
        assert made.status == 201, await made.text()

    shown = await (await export(client, ada, "transactions", "?format=json")).json()
    assert [t["description"] for t in shown if t["kind"] == "adjustment"] == reasons
    rows = csv_rows(await (await export(client, ada, "transactions")).text())
    adjusted = [r for r in rows if r["kind"] == "adjustment"]
    assert [r["description"] for r in adjusted] == [
        "'" + reason if reason != "plain refund" else reason for reason in reasons]
    assert adjusted[1]["amount"] == "-1"  # numbers are never prefixed
