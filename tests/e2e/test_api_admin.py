"""The operator console over HTTP, on both stores: adjustments, suspension, the totals and
the action log; and a matrix showing that nobody but an operator's login gets anything."""

from __future__ import annotations

import re
from typing import Any

from aiohttp.test_utils import TestClient
from cabinet_http import PASSWORD, ApiUser, api_signup, expect_problem, page_signup, submit

from web.keys import ADMIN

Client = TestClient[Any, Any]


async def operator(client: Client, name: str = "olga") -> ApiUser:
    """An operator, granted the way the command line does (AdminService.set_role)."""
    user = await api_signup(client, name)
    assert await client.app[ADMIN].set_role(name, True, "test")
    return user


async def make_key(client: Client, user: ApiUser) -> dict[str, str]:
    made = await client.post("/api/v1/keys", json={"name": "k", "scope": "predict"},
                             headers=user.auth)
    assert made.status == 201, await made.text()
    return {"Authorization": f"Bearer {(await made.json())['key']}"}


def admin_routes(client: Client, prefix: str) -> list[tuple[str, str]]:
    """(method, path) of every route under `prefix`, its {user_id} filled in: a route added
    later joins the matrix by itself."""
    found = set()
    for route in client.app.router.routes():
        info = route.resource.get_info() if route.resource else {}
        path = str(info.get("path") or info.get("formatter") or "")
        if path.startswith(prefix):
            found.add((route.method, path.replace("{user_id}", "1")))
    return sorted(found)


BODIES = {"adjustments": {"amount_credits": 5, "reason": "x"}, "suspend": {"reason": "x"},
          "resume": {"reason": "x"}}


def body_for(path: str) -> dict[str, Any] | None:
    return BODIES.get(path.rsplit("/", 1)[-1])


async def test_no_operator_route_gives_anything_to_anyone_else(client: Client) -> None:
    olga = await operator(client)
    ada = await api_signup(client, "ada", top_up=10)
    api = admin_routes(client, "/api/v1/admin")
    pages = admin_routes(client, "/admin")
    assert len(api) == 7 + 4 and len(pages) == 7 + 4, (api, pages)  # + HEAD of each GET
    callers = {"anonymous": {}, "user": ada.auth, "user's key": await make_key(client, ada),
               "operator's key": await make_key(client, olga)}
    for who, headers in callers.items():
        for method, path in api:
            response = await client.request(method, path, json=body_for(path),
                                            headers=headers)
            if method == "HEAD":
                assert response.status == (401 if who == "anonymous" else 403)
            elif who == "anonymous":
                await expect_problem(response, 401, "unauthorized")
            else:
                await expect_problem(response, 403, "operator_only")
    # Pages: a signed-in non-operator (and nobody) finds nothing there, not even a form.
    await page_signup(client, "bob")
    for method, path in pages:
        response = await client.request(method, path, data={"reason": "x"},
                                        allow_redirects=False)
        assert response.status == 404, (method, path, response.status)
        text = await response.text()
        assert "amount_credits" not in text and "Ledger totals" not in text
    client.session.cookie_jar.clear()
    for method, path in pages:
        response = await client.request(method, path, allow_redirects=False)
        assert response.status == 404, (method, path, response.status)
    assert (await client.app[ADMIN].actions()).data[0].kind == "grant"  # nothing else done
    assert (await client.app[ADMIN].user(ada.id)).balance_credits == 10


async def test_an_adjustment_is_idempotent_bounded_and_in_the_users_history(
        client: Client) -> None:
    olga = await operator(client)
    ada = await api_signup(client, "ada", top_up=10)
    url = f"/api/v1/admin/users/{ada.id}/adjustments"
    headers = {**olga.auth, "Idempotency-Key": "credit-1"}
    first = await client.post(url, json={"amount_credits": 15, "reason": "outage refund"},
                              headers=headers)
    assert first.status == 201, await first.text()
    again = await client.post(url, json={"amount_credits": 15, "reason": "outage refund"},
                              headers=headers)
    assert await again.json() == await first.json()
    assert (await first.json())["balance"] == {"balance": 25, "held": 0, "available": 25}
    over = await client.post(url, json={"amount_credits": -26, "reason": "clawback"},
                             headers=olga.auth)
    body = await expect_problem(over, 422, "insufficient_balance")
    assert body["available"] == 25
    for bad in ({"amount_credits": 5}, {"amount_credits": 5, "reason": "  "},
                {"amount_credits": 0, "reason": "zero"}, {"amount_credits": 1.5, "reason": "x"},
                {"amount_credits": True, "reason": "x"}, {"amount_credits": 5, "reason": "a\x00"}):
        await expect_problem(await client.post(url, json=bad, headers=olga.auth), 422,
                             "validation_error")
    await expect_problem(await client.post("/api/v1/admin/users/999/adjustments", json={
        "amount_credits": 1, "reason": "x"}, headers=olga.auth), 404, "user_not_found")
    seen = await (await client.get("/api/v1/transactions", headers=ada.auth)).json()
    assert [(t["kind"], t["amount"], t["description"]) for t in seen["data"]] == [
        ("adjustment", 15, "outage refund"), ("top_up", 10, "Top-up")]
    actions = await (await client.get("/api/v1/admin/actions", headers=olga.auth)).json()
    assert [(a["kind"], a["amount_credits"], a["operator_id"]) for a in actions["data"]] == [
        ("adjustment", 15, olga.id), ("grant", None, None)]
    totals = await (await client.get("/api/v1/admin/ledger", headers=olga.auth)).json()
    assert (totals["balances_credits"], totals["top_ups_credits"],
            totals["adjustments_credits"], totals["revenue_credits"]) == (25, 10, 15, 0)
    assert totals["balanced"] and totals["verifier"]["status"] == "ok"


async def test_the_users_list_searches_and_pages_by_cursor(client: Client) -> None:
    olga = await operator(client)
    for name in ("ann", "anna", "bob", "annika"):
        await api_signup(client, name, top_up=3)
    listed = await (await client.get("/api/v1/admin/users?q=ANN&limit=2",
                                     headers=olga.auth)).json()
    assert [u["username"] for u in listed["data"]] == ["annika", "anna"]
    assert listed["has_more"]
    after = listed["data"][-1]["id"]
    rest = await (await client.get(f"/api/v1/admin/users?q=ann&limit=2&starting_after={after}",
                                   headers=olga.auth)).json()
    assert [u["username"] for u in rest["data"]] == ["ann"] and not rest["has_more"]
    ann = rest["data"][0]
    assert (ann["balance"], ann["held"], ann["spent_this_month"]) == (3, 0, 0)
    assert ann["last_activity_at"] and not ann["suspended"]
    detail = await (await client.get(f"/api/v1/admin/users/{ann['id']}",
                                     headers=olga.auth)).json()
    assert [t["kind"] for t in detail["transactions"]] == ["top_up"]
    await expect_problem(await client.get("/api/v1/admin/users/12345", headers=olga.auth),
                         404, "user_not_found")
    await expect_problem(await client.get("/api/v1/admin/users?limit=0", headers=olga.auth),
                         422, "validation_error")
    await expect_problem(await client.get("/api/v1/admin/users?q=a%00", headers=olga.auth),
                         422, "validation_error")
    for wildcard in ("%25", "_", "%5C"):  # LIKE's own characters match only themselves
        found = await (await client.get(f"/api/v1/admin/users?q={wildcard}",
                                        headers=olga.auth)).json()
        assert found["data"] == [], wildcard


async def test_a_suspension_stops_every_credential_at_once_and_a_resume_restores_them(
        client: Client) -> None:
    olga = await operator(client)
    ada = await api_signup(client, "ada", top_up=10)
    key = await make_key(client, ada)
    await page_signup(client, "bob")
    bob_id = (await client.app[ADMIN].users(q="bob")).data[0].id
    url = "/api/v1/admin/users/{}/{}"
    for user_id in (ada.id, bob_id):
        done = await client.post(url.format(user_id, "suspend"), json={"reason": "fraud check"},
                                 headers=olga.auth)
        assert done.status == 200, await done.text()
        assert (await done.json())["suspended"]
    for headers in (ada.auth, key):
        await expect_problem(await client.get("/api/v1/balance", headers=headers), 401,
                             "account_suspended")
    cabinet = await client.get("/cabinet", allow_redirects=False)
    assert cabinet.status == 303 and cabinet.headers["Location"] == "/login"
    login = await client.post("/api/v1/auth/login", json={"username": "ada",
                                                           "password": PASSWORD})
    await expect_problem(login, 401, "account_suspended")
    client.session.cookie_jar.clear()
    page_login = await submit(client, "/login", "/login", {"username": "ada",
                                                           "password": PASSWORD})
    assert page_login.status == 401 and "suspended" in await page_login.text()
    await expect_problem(await client.post(url.format(ada.id, "suspend"), json={
        "reason": "again"}, headers=olga.auth), 409, "suspension_conflict")
    resumed = await client.post(url.format(ada.id, "resume"), json={"reason": "cleared"},
                                headers=olga.auth)
    assert resumed.status == 200 and not (await resumed.json())["suspended"]
    for headers in (ada.auth, key):
        assert (await client.get("/api/v1/balance", headers=headers)).status == 200


async def test_the_console_pages_for_an_operator(client: Client) -> None:
    ada = await api_signup(client, "ada", top_up=10)
    await page_signup(client, "olga")
    console_link = 'href="/admin"'
    assert console_link not in await (await client.get("/cabinet")).text()
    assert await client.app[ADMIN].set_role("olga", True, "test")
    assert console_link in await (await client.get("/cabinet")).text()  # the header links it
    listing = await client.get("/admin?q=ad")
    html = await listing.text()
    assert listing.status == 200 and f'/admin/users/{ada.id}"' in html
    assert "<script>" not in html and "style=" not in html
    assert listing.headers["Cache-Control"] == "no-store"
    hostile = await client.get("/admin?q=a%00d")  # control characters are dropped, not a 500
    assert hostile.status == 200 and f'/admin/users/{ada.id}"' in await hostile.text()
    page = await (await client.get(f"/admin/users/{ada.id}")).text()
    token = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert token is not None
    form = {"csrf_token": token.group(1), "amount_credits": "-4", "reason": "duplicate top-up",
            "operation_id": "form-1"}
    done = await client.post(f"/admin/users/{ada.id}/adjustments", data=form,
                             allow_redirects=False)
    assert done.status == 303, await done.text()
    again = await client.post(f"/admin/users/{ada.id}/adjustments", data=form,
                              allow_redirects=False)
    assert again.status == 303  # the same form sent twice adjusts once
    assert (await client.app[ADMIN].user(ada.id)).balance_credits == 6
    shown = await (await client.get(f"/admin/users/{ada.id}")).text()
    assert "duplicate top-up" in shown and "Adjusted by -4 credits" in shown
    forged = await client.post(f"/admin/users/{ada.id}/suspend", data={"reason": "x"},
                               allow_redirects=False)
    assert forged.status == 403  # an operator's form without the CSRF token
    for path in ("/admin/ledger", "/admin/actions"):
        response = await client.get(path)
        assert response.status == 200, await response.text()
    assert "Balanced" in await (await client.get("/admin/ledger")).text()
    russian = await (await client.get(f"/admin/users/{ada.id}?lang=ru")).text()
    assert "Скорректировать баланс" in russian and "Adjust the balance" not in russian
    # A revoked role takes effect on the next request.
    await client.app[ADMIN].set_role("olga", False, "test")
    assert (await client.get("/admin")).status == 404
    assert console_link not in await (await client.get("/cabinet")).text()
