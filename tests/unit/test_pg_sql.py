"""Our `?` SQL, as PostgreSQL's `$n`: placeholders numbered, literals and casts left alone."""

from __future__ import annotations

import pytest

from events.pgdatabase import portable_ddl, to_postgres


def test_question_marks_become_numbered_parameters_outside_literals_and_comments() -> None:
    sql, names = to_postgres(
        "SELECT 'a?b', \"odd?name\", x::text FROM t WHERE a = ? AND b = ? -- why?\n AND c = ?")
    assert sql == ("SELECT 'a?b', \"odd?name\", x::text FROM t WHERE a = $1 AND b = $2 "
                   "-- why?\n AND c = $3")
    assert names is None


def test_a_quote_doubled_inside_a_literal_does_not_end_it() -> None:
    assert to_postgres("SELECT 'it''s ?' WHERE x = ?")[0] == "SELECT 'it''s ?' WHERE x = $1"


def test_named_parameters_are_numbered_once_each() -> None:
    sql, names = to_postgres("SELECT * FROM t WHERE a = :a AND b = :b OR a = :a")
    assert (sql, names) == ("SELECT * FROM t WHERE a = $1 AND b = $2 OR a = $1", ("a", "b"))


def test_mixing_both_styles_is_refused() -> None:
    with pytest.raises(ValueError, match="mixes"):
        to_postgres("SELECT ? WHERE a = :a")


def test_sqlite_integers_become_64_bit_columns() -> None:
    assert portable_ddl("id INTEGER PRIMARY KEY, n integer NOT NULL, pointer TEXT") == (
        "id BIGINT PRIMARY KEY, n BIGINT NOT NULL, pointer TEXT")
