"""Reading request bodies within limits: JSON objects, form posts and CSV uploads."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from aiohttp import BodyPartReader, hdrs, web
from aiohttp.http_exceptions import HttpProcessingError
from marshmallow import Schema, ValidationError

from web.problems import Problem
from web.upload_text import SUPPORTED, NotText, UnknownCharset, declared_charset, decode_upload

MAX_FIELD_BYTES = 64 * 1024  # a pasted list of numbers fits; a novel does not
MAX_PARTS = 8  # model_id, data, file, csrf_token, operation_id, and a little room


async def read_json(request: web.Request) -> dict[str, Any]:
    if request.content_type != "application/json":
        raise Problem(415, "unsupported_media_type", "Send JSON",
                      "the body must be application/json")
    raw = await request.read()  # aiohttp enforces client_max_size here (413)
    try:
        data = json.loads(raw.decode("utf-8"))
    except (ValueError, RecursionError, UnicodeDecodeError):
        raise Problem(400, "malformed_json", "The body is not valid JSON",
                      "the body could not be parsed as UTF-8 JSON") from None
    try:  # json.loads lets "\ud800" through; such text can be neither stored nor hashed
        # Only as an escape: the strict UTF-8 decode above refuses an encoded surrogate.
        if b"\\u" in raw:
            json.dumps(data, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        raise Problem(400, "malformed_json", "The body is not valid JSON",
                      "the body holds a lone surrogate (\\ud800-\\udfff), which is not text"
                      ) from None
    if not isinstance(data, dict):
        raise Problem(422, "validation_error", "The request is not valid",
                      "the body must be a JSON object", errors={"_schema": ["not an object"]})
    return data


def load(schema: Schema, data: Any) -> dict[str, Any]:
    try:
        loaded: dict[str, Any] = schema.load(data)
    except ValidationError as error:
        messages = error.messages if isinstance(error.messages, dict) else {
            "_schema": error.messages}
        raise Problem(422, "validation_error", "The request is not valid",
                      "; ".join(f"{k}: {_text(v)}" for k, v in messages.items()),
                      errors={str(k): _flat(v) for k, v in messages.items()}) from None
    return loaded


def _flat(value: Any) -> list[str]:
    if isinstance(value, list):
        return [str(v) for v in value]
    if isinstance(value, dict):
        return [f"{k}: {_text(v)}" for k, v in value.items()]
    return [str(value)]


def _text(value: Any) -> str:
    return " ".join(_flat(value))


def whole_number(text: str, max_digits: int) -> int | None:
    """ASCII digits only, and not too many of them: str.isdigit() also accepts "²" and
    "٣", which int() then refuses or reads as another number."""
    text = text.strip()
    if not (0 < len(text) <= max_digits and text.isascii() and text.isdigit()):
        return None
    return int(text)


@dataclass
class Upload:
    fields: dict[str, str]
    file_text: str | None
    file_name: str = ""  # as the browser sent it, for messages only


async def read_multipart(request: web.Request, max_file_bytes: int) -> Upload:
    """Text fields and one file, each counted as it streams in: aiohttp's body limit does not
    cover a multipart read, so this is where an oversized upload is stopped."""
    fields: dict[str, str] = {}
    file_raw: bytes | None = None
    file_name, file_charset = "", None
    parts, seen_file = 0, False
    try:  # a missing boundary, a bad part header or a cut-off body fail deep in the parser
        reader = await request.multipart()
        while (part := await reader.next()) is not None:
            if not isinstance(part, BodyPartReader):
                raise Problem(400, "bad_request", "Nested multipart is not supported", "")
            parts += 1
            if parts > MAX_PARTS:  # with every part bounded, this bounds the whole body
                raise Problem(400, "bad_request", "Too many form fields",
                              f"a form has at most {MAX_PARTS} parts")
            if part.filename is not None and part.name == "file":
                if seen_file:
                    raise Problem(400, "bad_request", "One file at a time", "")
                seen_file = True
                raw = await _read_limited(part, max_file_bytes, "the file")
                if raw:
                    file_raw, file_name = raw, part.filename
                    file_charset = declared_charset(part.headers.get(hdrs.CONTENT_TYPE))
            elif not part.name:  # read to the end by aiohttp otherwise, unbounded
                raise Problem(400, "bad_request", "A form part has no name", "")
            else:
                if part.name in fields:
                    raise Problem(400, "bad_request", "A form field was sent twice",
                                  f"{part.name[:40]} was sent twice")
                fields[part.name] = _decode(await _read_limited(part, MAX_FIELD_BYTES,
                                                                part.name))
    except (AssertionError, ValueError, KeyError, HttpProcessingError):
        raise Problem(400, "bad_request", "Malformed form data", "") from None
    # Decoded once every part is in: a `charset` field may come after the file.
    file_text = None if file_raw is None else _decode_file(
        file_raw, fields.get("charset") or file_charset)
    return Upload(fields=fields, file_text=file_text, file_name=file_name)


def _decode_file(raw: bytes, charset: str | None) -> str:
    try:
        return decode_upload(raw, charset)
    except UnknownCharset as error:
        raise Problem(422, "validation_error", "The request is not valid", str(error),
                      errors={"charset": [SUPPORTED]}) from None
    except NotText as error:
        raise Problem(422, "validation_error", "The file is not text",
                      f"{error}; upload a CSV file saved as UTF-8 or Windows-1251",
                      errors={"file": [str(error)]}) from None


async def _read_limited(part: BodyPartReader, limit: int, what: str) -> bytes:
    chunks, size = [], 0
    while chunk := await part.read_chunk(64 * 1024):
        size += len(chunk)
        if size > limit:
            raise Problem(413, "payload_too_large", "Upload too large",
                          f"{what} is larger than {limit:,} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def _decode(raw: bytes) -> str:
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise Problem(422, "validation_error", "The file is not text",
                      "upload a UTF-8 CSV file", errors={"file": ["not UTF-8 text"]}) from None
