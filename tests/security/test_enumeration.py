"""No username enumeration at login: an unknown user and a wrong password get the same status,
the same body and, with the real argon2 parameters, about the same time."""

from __future__ import annotations

import itertools
import statistics
import time
from pathlib import Path

from security_http import Client, MakeClient, app_config, csrf_from, register

from web.app import create_app
from web.keys import THROTTLE
from web.throttle import LoginThrottle

ROUNDS = 20


async def api_login(client: Client, username: str, password: str) -> tuple[int, str, str]:
    response = await client.post("/api/v1/auth/login",
                                 json={"username": username, "password": password})
    return response.status, response.content_type, await response.text()


async def page_login(client: Client, username: str, password: str) -> tuple[int, str]:
    token = await csrf_from(client, "/login")
    response = await client.post("/login", data={
        "csrf_token": token, "username": username, "password": password})
    # The form shows the typed username again; nothing else may differ.
    return response.status, (await response.text()).replace(username, "USERNAME")


async def test_unknown_user_and_wrong_password_get_the_same_api_answer(client: Client) -> None:
    await register(client, "alice")

    wrong_password = await api_login(client, "alice", "not the password")
    unknown_user = await api_login(client, "mallory", "not the password")

    assert wrong_password == unknown_user
    assert wrong_password[0] == 401


async def test_unknown_user_and_wrong_password_get_the_same_login_page(client: Client) -> None:
    await register(client, "alice")

    wrong_password = await page_login(client, "alice", "not the password")
    unknown_user = await page_login(client, "mallory", "not the password")

    assert wrong_password == unknown_user
    assert wrong_password[0] == 401


async def test_unknown_user_and_wrong_password_take_about_the_same_time(
        make_client: MakeClient, db_path: Path) -> None:
    app = create_app(app_config(db_path, cheap_password_hashing=False))  # real argon2 cost
    moments = itertools.count(step=3600)  # an hour between attempts: never throttled
    app[THROTTLE] = LoginThrottle(clock=lambda: float(next(moments)))
    client = await make_client(app=app)
    await register(client, "alice")
    timings: dict[str, list[float]] = {"wrong password": [], "unknown user": []}

    for _ in range(ROUNDS):  # interleaved, so drift in the machine's speed hits both alike
        for case, username in (("wrong password", "alice"), ("unknown user", "mallory")):
            started = time.perf_counter()
            status, _, _ = await api_login(client, username, "not the password")
            timings[case].append(time.perf_counter() - started)
            assert status == 401

    ratio = statistics.median(timings["unknown user"]) / statistics.median(
        timings["wrong password"])
    assert 0.5 <= ratio <= 2, {case: statistics.median(t) for case, t in timings.items()}
