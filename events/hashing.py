"""The hash chain that makes the log tamper-evident.

Each event's hash covers its own stored text and the previous event's hash, so editing,
deleting or reordering any row breaks every hash after it.
"""

import hashlib

import orjson

from events.codec import canonical_bytes

GENESIS_HASH = "0" * 64


def chain_hash(
    previous_hash: str,
    *,
    position: int,
    stream_id: str,
    version: int,
    type_name: str,
    schema_version: int,
    data_json: str,
    metadata_json: str,
    recorded_at: str,
) -> str:
    fields = [previous_hash, position, stream_id, version, type_name, schema_version,
              data_json, metadata_json, recorded_at]
    payload = None
    if type(position) is int and type(version) is int and type(schema_version) is int:
        # Text and 64-bit integers only, no float: orjson escapes every code point as
        # json.dumps(ensure_ascii=False) does (tests/unit/test_audit_fast_codec.py), and
        # the texts' own "null"s are inside strings, so no check of the output is needed.
        try:  # not contextlib.suppress: its object costs a fifth of this hash, in the lock
            payload = orjson.dumps(fields, option=orjson.OPT_PASSTHROUGH_SUBCLASS)
        except TypeError:  # a lone surrogate, an integer past 64 bits: json writes it
            payload = None
    if payload is None:
        payload = canonical_bytes(fields)
    return hashlib.sha256(payload).hexdigest()
