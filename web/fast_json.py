"""JSON for API responses by orjson (several times quicker than json.dumps), and by json
where orjson refuses a value (an integer past 64 bits, a key that is not a string).

Only replies use it: the log's hashed text is still written by events.codec.canonical_json.
The text may differ from json.dumps's (UTF-8 instead of \\u escapes, 1e16 for 1e+16); it
parses to the same value.
"""

from __future__ import annotations

import json
from typing import Any

import orjson


def dumps(value: Any) -> str:
    try:
        return orjson.dumps(value).decode()
    except (orjson.JSONEncodeError, TypeError):
        return json.dumps(value)
