"""Whether a write batch would gain by inserting its jobs' rows in one statement a table:
CPU per row of single-row INSERTs against 5-row INSERTs (a batch's typical size at 50
connections), into a table shaped as `tasks` (its index, its CHECKs, a prediction's JSON),
inside one transaction on a WAL file, as the writer runs them. Python's sqlite3 keeps each
statement prepared, so a single-row INSERT pays binding and the B-tree, not parsing.

Run: .venv/bin/python bench/insert_rows.py [--rows 20000] [--rounds 3] [--per 5]
"""

from __future__ import annotations

import argparse
import sqlite3
import tempfile
import time
from pathlib import Path

TASKS = """
CREATE TABLE tasks (
    id INTEGER PRIMARY KEY, user_id INTEGER NOT NULL, model_id INTEGER NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('pending', 'completed')),
    input_data TEXT NOT NULL, input_indexes TEXT NOT NULL, output_data TEXT,
    invalid TEXT NOT NULL, quoted_credits INTEGER NOT NULL,
    cost_credits INTEGER NOT NULL CHECK (cost_credits >= 0), error TEXT,
    created_at TEXT NOT NULL, updated_at TEXT NOT NULL, model_version TEXT);
CREATE INDEX tasks_by_user ON tasks (user_id, id);
"""
COLUMNS = 14
AT = "2026-12-04T19:00:00.000000Z"


def row(task_id: int) -> tuple[object, ...]:
    return (task_id, task_id % 50, 1, "completed", "[1.0,2.0,3.0,4.0,5.0,6.0,7.0,8.0,9.0,10.0]",
            "[0,1,2,3,4,5,6,7,8,9]", "[2.0,4.0,6.0,8.0,10.0,12.0,14.0,16.0,18.0,20.0]", "[]",
            10, 10, None, AT, AT, "1")


def insert_sql(rows: int) -> str:
    values = "(" + ", ".join(["?"] * COLUMNS) + ")"
    return "INSERT INTO tasks VALUES " + ", ".join([values] * rows)


def per_row_us(conn: sqlite3.Connection, first_id: int, rows: int, per: int) -> float:
    """CPU µs a row, inserting `rows` rows `per` to a statement, in one transaction."""
    sql = insert_sql(per)
    conn.execute("BEGIN")
    started = time.process_time()
    for start in range(first_id, first_id + rows, per):
        conn.execute(sql, tuple(v for i in range(start, start + per) for v in row(i)))
    used = time.process_time() - started
    conn.execute("COMMIT")
    return used / rows * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=20000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--per", type=int, default=5, help="rows a statement, batched")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        conn = sqlite3.connect(Path(scratch) / "rows.db", isolation_level=None)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.executescript(TASKS)
        next_id = 1
        for number in range(1, args.rounds + 1):  # which goes first alternates: the
            cells = [(1, "single"), (args.per, "batched")]  # table grows as they run
            figures: dict[str, float] = {}
            for per, name in cells if number % 2 else cells[::-1]:
                figures[name] = per_row_us(conn, next_id, args.rows, per)
                next_id += args.rows
            single, batched = figures["single"], figures["batched"]
            print(f"round {number}: 1 row a statement {single:.2f} µs a row, "
                  f"{args.per} rows a statement {batched:.2f} µs a row "
                  f"(ratio {batched / single:.2f})")
        conn.close()


if __name__ == "__main__":
    main()
