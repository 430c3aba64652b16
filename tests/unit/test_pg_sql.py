"""Our `?` SQL, as PostgreSQL's `$n`: placeholders numbered, literals and casts left alone."""

from __future__ import annotations

import pytest

from events.pgdatabase import (
    Coalesced,
    WriteShape,
    portable_ddl,
    read_words,
    to_postgres,
    write_shape,
)


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


def test_only_plain_writes_outside_the_events_table_may_wait_to_be_coalesced() -> None:
    assert write_shape("INSERT INTO holds VALUES (?, ?)") == WriteShape(
        "holds", frozenset({"insert", "into", "holds", "values"}))
    assert write_shape("  update Accounts SET n = n + ? WHERE id = ?") is not None
    assert write_shape("DELETE FROM tags") is not None
    for immediate in ("INSERT INTO events VALUES (?)",  # which columns name the stream?
                      "SELECT 1", "WITH a AS (SELECT 1) INSERT INTO t SELECT * FROM a",
                      "INSERT INTO t VALUES (1); DELETE FROM u", "SAVEPOINT job"):
        assert write_shape(immediate) is None, immediate


def test_coalesced_writes_become_one_statement_with_parameters_renumbered() -> None:
    queue = Coalesced()
    for query, args in (("INSERT INTO a VALUES ($1, '$1', $2)", (1, 2)),
                        ("UPDATE b SET n = $1 WHERE id = $2 -- $1", (3, 4))):
        shape = write_shape(query)
        assert shape is not None and not queue.conflicts(shape)
        queue.add(shape, query, args)
    assert queue.may_ride(read_words("SELECT x FROM c WHERE id = $1"))
    assert not queue.may_ride(read_words("SELECT x FROM c JOIN b ON true"))
    sql, args = queue.take("SELECT x FROM c WHERE id = $1", (5,))
    assert sql == ("WITH w1 AS (INSERT INTO a VALUES ($1, '$1', $2)\n), "
                   "w2 AS (UPDATE b SET n = $3 WHERE id = $4 -- $1\n) "
                   "SELECT x FROM c WHERE id = $5")
    assert args == (1, 2, 3, 4, 5)
    assert not queue


def test_a_second_write_to_a_queued_table_or_one_reading_it_must_wait_for_a_flush() -> None:
    queue = Coalesced()
    first = write_shape("INSERT INTO a VALUES ($1)")
    assert first is not None
    queue.add(first, "INSERT INTO a VALUES ($1)", (1,))
    for later in ("UPDATE a SET n = 2", "INSERT INTO b SELECT * FROM a"):
        shape = write_shape(later)
        assert shape is not None and queue.conflicts(shape), later
    reads_b = write_shape("INSERT INTO c SELECT * FROM b")
    assert reads_b is not None and not queue.conflicts(reads_b)
    queue.add(reads_b, "INSERT INTO c SELECT * FROM b", ())
    writes_b = write_shape("UPDATE b SET n = 1")
    assert writes_b is not None and queue.conflicts(writes_b)  # a queued write reads b


def test_an_append_to_the_log_is_queued_only_where_its_error_can_name_the_stream() -> None:
    shape = write_shape("INSERT INTO events (position, stream_id, version, data) "
                        "VALUES (?, ?, ?, ?), (?, ?, ?, ?)")
    assert shape is not None and shape.table == "events"
    assert shape.append_of((7, "account-1", 4, "{}", 8, "account-1", 5, "{}")) == (
        "account-1", 3)
    assert write_shape("INSERT INTO events (position, data) VALUES (?, ?)") is None
