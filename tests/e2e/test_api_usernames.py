"""Usernames in any alphabet over the API (both stores) and the register form: one name
whatever its case or look-alike letters (409 username_taken), found at login by any of its
spellings; invisible characters and mixed alphabets refused with a message for the field; and
the accounts of a database written before (tests/data/v1_ledger.db) found as they were, with
the audit passing after the accounts projection is rebuilt with the new key."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from cabinet_http import PASSWORD, api_signup, expect_problem, submit, text_of
from test_old_database import V1_LEDGER, audit

from web.app import create_app
from web.config import Config

Client = TestClient[Any, Any]


async def register(client: Client, username: str) -> Any:
    return await client.post("/api/v1/auth/register",
                             json={"username": username, "password": PASSWORD})


async def login(client: Client, username: str, password: str = PASSWORD) -> Any:
    return await client.post("/api/v1/auth/login",
                             json={"username": username, "password": password})


async def test_a_cyrillic_name_is_one_name_whatever_its_case_or_look_alikes(
        client: Client) -> None:
    ivan = await api_signup(client, "Иван")
    cop = await api_signup(client, "cop")

    for taken in ("иван", "ИВАН", "Иван"):
        await expect_problem(await register(client, taken), 409, "username_taken")
    for taken in ("сор", "СОР"):  # Cyrillic letters only, that read as Latin "cop"
        await expect_problem(await register(client, taken), 409, "username_taken")

    for spelling, user_id in [("иван", ivan.id), ("ИВАН", ivan.id), ("СОР", cop.id),
                              ("ｃｏｐ", cop.id)]:
        response = await login(client, spelling)
        assert response.status == 200, (spelling, await response.text())
        token = (await response.json())["access_token"]
        me = await (await client.get("/api/v1/me",
                                     headers={"Authorization": f"Bearer {token}"})).json()
        assert (me["id"], me["username"]) == (user_id, "Иван" if user_id == ivan.id else "cop")
    await expect_problem(await login(client, "иван", "a wrong password"), 401,
                         "invalid_credentials")


async def test_a_name_is_kept_in_its_nfkc_spelling(client: Client) -> None:
    response = await register(client, "ｉｖａｎ")  # full-width letters
    assert response.status == 201
    assert (await response.json())["username"] == "ivan"


@pytest.mark.parametrize(("username", "says"), [
    ("iv\u200ban", "invisible"), ("Ivаn", "mixes Cyrillic and Latin"),
])
async def test_invisible_characters_and_mixed_alphabets_are_refused(
        client: Client, username: str, says: str) -> None:
    problem = await expect_problem(await register(client, username), 422, "validation_error")
    assert says in problem["errors"]["username"][0]


async def test_the_register_form_takes_a_cyrillic_name_and_explains_refusals(
        client: Client) -> None:
    response = await submit(client, "/register", "/register",
                            {"username": "Ёжик", "password": PASSWORD})
    assert response.status == 303
    client.session.cookie_jar.clear()

    taken = await submit(client, "/register", "/register",
                         {"username": "ЁЖИК", "password": PASSWORD})
    assert taken.status == 409
    assert "This username is taken." in await taken.text()
    mixed = await submit(client, "/register", "/register",
                         {"username": "Ёжиk", "password": PASSWORD})
    assert mixed.status == 422
    assert "mixes Cyrillic and Latin" in text_of(await mixed.text())


async def test_the_register_form_explains_a_refused_name_in_russian(client: Client) -> None:
    assert (await client.get("/register?lang=ru")).status == 200

    mixed = await submit(client, "/register", "/register",
                         {"username": "Ёжиk", "password": PASSWORD})
    hidden = await submit(client, "/register", "/register",
                          {"username": "ёж\u200bик", "password": PASSWORD})

    assert mixed.status == 422 and hidden.status == 422
    assert ("имя пользователя пишется буквами одного алфавита, а здесь смешаны кириллица и "
            "латиница") in text_of(await mixed.text())
    assert "невидимых символов (U+200B)" in text_of(await hidden.text())


async def test_the_accounts_of_an_old_database_are_found_by_their_new_keys(
        aiohttp_client: Any, tmp_path: Path) -> None:
    copy = tmp_path / "v1.db"
    shutil.copyfile(V1_LEDGER, copy)
    client = await aiohttp_client(create_app(Config(db_path=copy,
                                                    cheap_password_hashing=True)))

    for spelling in ("ada", "ADA", "аdа"):  # the last with Cyrillic а's: the same name
        response = await login(client, spelling)
        assert response.status == 200, (spelling, await response.text())
    await expect_problem(await register(client, "ВОВ"), 409, "username_taken")  # "bob"
    await api_signup(client, "Ада")

    await client.close()
    after = audit(copy)
    assert after.returncode == 0, after.stdout + after.stderr


async def test_the_api_explains_a_refused_name_in_russian(client: Client) -> None:
    """The register schema's reason follows Accept-Language; the code stays the same."""
    refused = await client.post("/api/v1/auth/register", headers={"Accept-Language": "ru"},
                                json={"username": "ab cd", "password": PASSWORD})
    problem = await expect_problem(refused, 422, "validation_error")
    reason = problem["errors"]["username"][0]
    assert "пробел" in reason and "space" not in reason
    english = await expect_problem(await register(client, "ab cd"), 422, "validation_error")
    assert "a space is none of these" in english["errors"]["username"][0]
