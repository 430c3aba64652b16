"""The fast decoder reads every stored text as json.loads does, and the hashed text is the
same byte for byte: proved on a real file written by the first release."""

from __future__ import annotations

import json
import sqlite3
from contextlib import closing
from pathlib import Path

import pytest

from events.codec import canonical_json, fast_loads
from events.hashing import GENESIS_HASH
from events.sql_log import row_from_db

V1 = Path(__file__).resolve().parents[1] / "data" / "v1_ledger.db"


def test_every_row_of_an_old_file_decodes_the_same_and_still_chains() -> None:
    with closing(sqlite3.connect(f"file:{V1}?mode=ro", uri=True)) as conn:
        conn.row_factory = sqlite3.Row
        rows = [row_from_db(dict(r))
                for r in conn.execute("SELECT * FROM events ORDER BY position")]
    assert rows
    previous = GENESIS_HASH
    for row in rows:
        for text in (row.data_json, row.metadata_json):
            value = fast_loads(text)
            assert value == json.loads(text) and type(value) is type(json.loads(text))
            assert canonical_json(value) == canonical_json(json.loads(text))
        assert row.hash == row.expected_hash(previous), row.position
        previous = row.hash


@pytest.mark.parametrize("text", ['{"n": 123456789012345678901234567890}',
                                  '[18446744073709551616, -9223372036854775809]', '"\\ud800"',
                                  '[NaN]', '{"a": 1, "a": 2}', '[1e308, -0.0, 0.1]'])
def test_what_orjson_refuses_or_reads_otherwise_is_read_as_json_reads_it(text: str) -> None:
    assert repr(fast_loads(text)) == repr(json.loads(text))


@pytest.mark.parametrize("value", [
    {"task": {"id": "tsk_x"}, "predictions": [{"input": 1.5, "output": 3.0}], "cost": 10},
    {"big": 2**70, "nan": [1e308, -0.0, 1e-7], "text": "é\u2028\x00"},
    {1: "an int key"},
])
def test_api_replies_parse_back_to_what_json_dumps_gives(value: object) -> None:
    from web.fast_json import dumps

    assert json.loads(dumps(value)) == json.loads(json.dumps(value))
