"""The history to take away: CSV and JSON exports of transactions and tasks, and the statement,
streamed a page at a time so that the server's memory does not grow with the range.

CSV is RFC 4180 (UTF-8, CRLF, a header row, quotes only where needed); the columns are the
API's field names; a list or object (a task's input, output, invalid rows) is one cell of
compact JSON; null is an empty cell; text a spreadsheet would take for a formula (it starts
with = + - @ or a tab) gets a leading apostrophe, so it opens as text. JSON is one array of
the objects the paged API shows. Both list rows oldest first. Nothing is sent until the
first page is read, so a failure to read gives a problem+json; a failure later cuts the
connection (no final chunk), so a client never takes a partial file for a whole one.
"""

from __future__ import annotations

import csv
import functools
import io
import json
import logging
from collections.abc import AsyncIterator, Callable, Sequence
from datetime import date
from typing import Any

from aiohttp import web

from ledger.history import FIRST_DAY, LAST_DAY, DayRange, History, StatementTally
from web import schemas
from web.auth import UNAUTHORIZED, api_user, page_user
from web.bodies import load
from web.keys import LEDGER, PUBLIC_IDS
from web.problems import Problem

log = logging.getLogger("ml_cabinet")

TRANSACTION_COLUMNS = ("id", "created_at", "kind", "amount", "balance_after", "description",
                       "task_id")
TASK_COLUMNS = ("id", "created_at", "model_id", "model_version", "status", "cost", "error",
                "input_data", "output_data", "invalid")
CONTENT_TYPES = {"csv": "text/csv", "json": "application/json"}

export_query, range_query = schemas.ExportQuery(), schemas.RangeQuery()


async def reader(request: web.Request) -> int:
    """A program's bearer token or API key (any scope reads), or the cabinet's session, so
    that a link on the page downloads the file. A GET with no effects needs no CSRF token."""
    if "Authorization" in request.headers:
        return await api_user(request)
    user_id = await page_user(request)
    if user_id is None:
        raise UNAUTHORIZED
    return user_id


def _invalid(field: str, message: str) -> Problem:
    return Problem(422, "validation_error", "The request is not valid", f"{field}: {message}",
                   errors={field: [message]})


def _day(field: str, text: str | None) -> date | None:
    if text is None:
        return None
    try:
        day = date.fromisoformat(text)  # the schema let only YYYY-MM-DD through
    except ValueError:
        raise _invalid(field, "not a date of the calendar") from None
    if not FIRST_DAY <= day <= LAST_DAY:
        raise _invalid(field, f"a date from {FIRST_DAY} to {LAST_DAY}")
    return day


def days_asked(query: dict[str, Any]) -> tuple[date | None, date | None]:
    first, last = _day("from", query.get("from_")), _day("to", query.get("to"))
    if first is not None and last is not None and first > last:
        raise _invalid("from", "from is after to")
    return first, last


def file_name(what: str, first: date | None, last: date | None, ext: str) -> str:
    if first and last:
        span = f"{first}-to-{last}"
    else:
        span = f"since-{first}" if first else f"until-{last}" if last else "all"
    return f"ml-cabinet-{what}-{span}.{ext}"


# A spreadsheet runs a cell that starts with one of these as a formula (OWASP "CSV
# injection"); an operator's adjustment reason or an error text is free text and could.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def cell(value: Any) -> Any:
    """One CSV cell: numbers as they are, null empty, lists and objects as JSON, and text
    that a spreadsheet would read as a formula behind a leading apostrophe, so that it
    shows as the text it is. Numbers (negative amounts included) are never text here."""
    if value is None:
        return ""
    if isinstance(value, list | dict):
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


async def csv_chunks(columns: Sequence[str], pages: AsyncIterator[list[Any]],
                     shape: Callable[[Any], dict[str, Any]]) -> AsyncIterator[bytes]:
    """The header with the first page, then a chunk a page."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")  # RFC 4180: CRLF, minimal quoting
    writer.writerow(columns)
    async for page in pages:
        for item in page:
            shown = shape(item)
            writer.writerow([cell(shown[name]) for name in columns])
        yield buffer.getvalue().encode("utf-8")
        buffer.seek(0)
        buffer.truncate()
    if buffer.tell():  # no rows at all: the header alone
        yield buffer.getvalue().encode("utf-8")


async def json_chunks(pages: AsyncIterator[list[Any]], shape: Callable[[Any], dict[str, Any]],
                      head: str = "[", tail: str = "]\n") -> AsyncIterator[bytes]:
    """One JSON array (inside `head` and `tail`), a page a chunk."""
    separator = "\n"
    async for page in pages:
        text = ",\n".join(json.dumps(shape(item), ensure_ascii=False) for item in page)
        yield f"{head}{separator}{text}".encode()
        head, separator = "", ",\n"
    yield f"{head}\n{tail}".encode()


async def stream(request: web.Request, chunks: AsyncIterator[bytes], content_type: str,
                 name: str) -> web.StreamResponse:
    first = await anext(chunks)  # before the headers: a failure here is a problem+json
    response = web.StreamResponse(headers={
        "Content-Disposition": f'attachment; filename="{name}"', "Cache-Control": "no-store"})
    response.content_type, response.charset = content_type, "utf-8"
    await response.prepare(request)
    try:
        await response.write(first)
        async for chunk in chunks:
            await response.write(chunk)  # waits while the client's socket is full
        await response.write_eof()
    except ConnectionError:
        log.info("export of %s stopped: the client went away", name)
    except Exception:
        log.exception("export of %s failed after it began; the connection is cut", name)
        if request.transport is not None:
            request.transport.abort()
    return response


async def export(request: web.Request, what: str) -> web.StreamResponse:
    user_id = await reader(request)
    query = load(export_query, dict(request.query))
    first, last = days_asked(query)
    history, ids = History(request.app[LEDGER]), request.app[PUBLIC_IDS]
    days = await history.days(user_id, first, last)
    pages: AsyncIterator[list[Any]]
    columns: Sequence[str]
    shape: Callable[[Any], dict[str, Any]]
    if what == "transactions":
        pages, columns = history.transaction_pages(user_id, days), TRANSACTION_COLUMNS
        shape = functools.partial(schemas.transaction_json, ids=ids)
    else:
        pages, columns = history.task_pages(user_id, days), TASK_COLUMNS
        shape = functools.partial(schemas.public_task, ids=ids)
    fmt = query["format"]
    chunks = csv_chunks(columns, pages, shape) if fmt == "csv" else json_chunks(pages, shape)
    return await stream(request, chunks, CONTENT_TYPES[fmt], file_name(what, first, last, fmt))


async def transactions_export(request: web.Request) -> web.StreamResponse:
    return await export(request, "transactions")


async def tasks_export(request: web.Request) -> web.StreamResponse:
    return await export(request, "tasks")


async def statement_days(history: History, user_id: int, first: date | None,
                         last: date | None) -> tuple[date, date]:
    """An open end is today; an open start is the day the account was opened."""
    today = await history.today(user_id)
    last = last or max(today, first or today)
    first = first or min(await history.opened_on(user_id), last)
    return first, last


def statement_head(first: date, last: date, days: DayRange, opening_credits: int) -> str:
    head = {"from": first.isoformat(), "to": last.isoformat(), "time_zone": days.time_zone,
            "opening_balance": opening_credits}
    return json.dumps(head)[:-1] + ', "movements": ['


async def statement(request: web.Request) -> web.StreamResponse:
    """GET /api/v1/statement: the movements of a range with their running totals."""
    user_id = await reader(request)
    history, ids = History(request.app[LEDGER]), request.app[PUBLIC_IDS]
    first, last = await statement_days(history, user_id,
                                        *days_asked(load(range_query, dict(request.query))))
    days = await history.days(user_id, first, last)
    opening = await history.opening_balance(user_id, days)
    tally = StatementTally(opening)

    async def chunks() -> AsyncIterator[bytes]:
        pages = history.movements(user_id, days, tally)
        async for chunk in json_chunks(pages, lambda t: schemas.movement_json(t, ids),
                                       head=statement_head(first, last, days, opening),
                                       tail=""):
            yield chunk
        totals = tally.totals()  # every movement has been counted by now
        yield (f'], "total_in": {totals.in_credits}, "total_out": {totals.out_credits}, '
               f'"closing_balance": {totals.closing_credits}}}\n').encode()

    return await stream(request, chunks(), "application/json",
                        file_name("statement", first, last, "json"))
