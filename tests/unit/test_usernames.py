"""Usernames: NFKC spelling, the rules in plain words, and the key that makes names differing
only in case or by look-alike letters one name; on ASCII the key is the old lower()."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ledger.credentials import InvalidInput
from ledger.usernames import normalize_username, username_key


@pytest.mark.parametrize(("raw", "kept"), [
    ("Иван_Петров", "Иван_Петров"), ("émile", "émile"), ("ｉｖａｎ", "ivan"),   # full width
    ("e\u0301mile", "émile"),                                                 # NFC as well
    ("Ёжик-2000", "Ёжик-2000"), ("Αλέξης", "Αλέξης"), ("山田たろう", "山田たろう"),
    ("김철수", "김철수"), ("ada.lovelace", "ada.lovelace"),
])
def test_names_in_one_alphabet_are_kept_in_their_nfkc_spelling(raw: str, kept: str) -> None:
    assert normalize_username(raw) == kept


@pytest.mark.parametrize(("raw", "says"), [
    ("iv\u200ban", "invisible characters (U+200B)"),     # zero-width space
    ("\u200dada", "invisible characters (U+200D)"),      # zero-width joiner
    ("ad\u202ea", "invisible characters (U+202E)"),      # right-to-left override
    ("ada\u3164", "invisible characters (U+3164)"),      # Hangul filler, a "letter"
    ("Ivаn", "mixes Cyrillic and Latin"),                # Cyrillic а in a Latin name
    ("Πaul", "mixes Greek and Latin"),
    ("iv an", "a space is none of these"),
    ("a<b", "“<” is none of these"),
    ("ab", "3–32 letters of one alphabet"),
    ("я" * 33, "3–32 letters of one alphabet"),
])
def test_other_names_are_refused_saying_why(raw: str, says: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        normalize_username(raw)
    assert refused.value.field == "username"
    assert says in str(refused.value)


@pytest.mark.parametrize(("one", "other"), [
    ("Ivan", "IVAN"), ("Straße", "STRASSE"),              # casefold, not lower()
    ("cop", "сор"),                                       # Latin / Cyrillic, whole word
    ("BOB", "ВОВ"), ("beta", "ΒΕΤΑ"), ("paxe", "рахе"),
    ("ёлка", "ЁЛКА"), ("ivan", "ｉｖａｎ"),
    ("ivan", "iv\u200ban"),                               # login with an invisible one
])
def test_spellings_of_one_name_share_a_key(one: str, other: str) -> None:
    assert username_key(one) == username_key(other)


@pytest.mark.parametrize(("one", "other"), [
    ("ivan", "иван"), ("emile", "émile"), ("ada", "ada1"), ("йод", "иод"),
])
def test_different_names_keep_different_keys(one: str, other: str) -> None:
    assert username_key(one) != username_key(other)


@given(st.from_regex(re.compile(r"[A-Za-z0-9_.\-]{3,32}", re.ASCII), fullmatch=True))
def test_every_name_the_old_rule_allowed_keeps_its_old_key(name: str) -> None:
    """Accounts made before names could hold other letters are found as they were."""
    assert normalize_username(name) == name
    assert username_key(name) == name.lower()


def test_the_login_throttle_counts_every_spelling_of_a_name_against_one_account() -> None:
    from web.throttle import throttle_keys
    assert throttle_keys("ivan", "192.0.2.1") == throttle_keys("ІVАN", "192.0.2.1")
