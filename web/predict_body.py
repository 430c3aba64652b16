"""POST /api/v1/predict's JSON body, checked without marshmallow when it has the usual shape.

marshmallow's load of `{"model_id": 1, "data": [...]}` costs about 20 µs; the check below
costs about 1. It accepts only what `schemas.PredictRequest` surely accepts, with the same
result: exactly the two fields, `model_id` a true int (not a bool) in 1..2**31, and `data` a
list (its items are the model's to judge, as fields.Raw leaves them). Anything else, valid or
not, goes to the schema, so every error message stays the schema's
(tests/unit/test_predict_body.py checks that the two agree on arbitrary bodies).
"""

from __future__ import annotations

from typing import Any

from web import schemas
from web.bodies import load

_schema = schemas.PredictRequest()
_FIELDS = frozenset(("model_id", "data"))
MAX_MODEL_ID = 2**31  # schemas.PredictRequest's validate.Range(1, 2**31)


def usual(body: dict[str, Any]) -> dict[str, Any] | None:
    """The loaded body when it has the usual shape, else None (the schema decides)."""
    if len(body) != 2 or not _FIELDS.issuperset(body):
        return None
    model_id, data = body["model_id"], body["data"]
    if type(model_id) is not int or not 1 <= model_id <= MAX_MODEL_ID or type(data) is not list:
        return None
    return {"model_id": model_id, "data": list(data)}


def predict_body(body: dict[str, Any]) -> dict[str, Any]:
    """`{"model_id": int, "data": list}`, or 422 validation_error with the schema's messages."""
    loaded = usual(body)
    return loaded if loaded is not None else load(_schema, body)
