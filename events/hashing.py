"""The hash chain that makes the log tamper-evident.

Each event's hash covers its own stored text and the previous event's hash, so editing,
deleting or reordering any row breaks every hash after it.
"""

import hashlib

from events.codec import canonical_json

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
    payload = canonical_json([previous_hash, position, stream_id, version, type_name,
                              schema_version, data_json, metadata_json, recorded_at])
    return hashlib.sha256(payload.encode()).hexdigest()
