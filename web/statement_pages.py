"""The printable statement ("выписка"): a range picker, the opening balance, the movements
with the balance after each, the totals and the closing balance, in the account's days.

The page shows at most MAX_SHOWN movements (a printout of a million rows helps nobody) but
its totals, summed by the database, count every one; the CSV and JSON links give them all.
"""

from __future__ import annotations

import contextlib
from datetime import date
from typing import Any

import aiohttp_jinja2
from aiohttp import web
from babel.dates import format_date

from ledger.history import History
from web import schemas
from web.auth import page_user
from web.exports import days_asked, statement_days
from web.i18n import request_language, translator
from web.keys import LEDGER, PUBLIC_IDS
from web.pages import transaction_view
from web.problems import Problem
from web.schemas import RangeQuery

MAX_SHOWN = 2000


def _asked(request: web.Request) -> tuple[date | None, date | None, bool]:
    """The days in the form; empty fields are the defaults. Bad ones: defaults and a flag."""
    sent = {name: value for name, value in request.query.items()
            if name in ("from", "to") and value.strip()}
    if RangeQuery().validate(sent):
        return None, None, True
    try:
        first, last = days_asked(RangeQuery().load(sent))
    except Problem:
        return None, None, True
    return first, last, False


async def statement_page(request: web.Request) -> web.Response:
    user_id = await page_user(request)
    if user_id is None:
        raise web.HTTPSeeOther(request.app.router["login"].url_for())
    history, ids = History(request.app[LEDGER]), request.app[PUBLIC_IDS]
    first, last, bad = _asked(request)
    if first is None and last is None:  # this month to date, as a bank's statement starts
        today = await history.today(user_id)
        first, last = today.replace(day=1), today
    first, last = await statement_days(history, user_id, first, last)
    days = await history.days(user_id, first, last)
    totals = await history.totals(user_id, days)
    shown: list[dict[str, Any]] = []
    tr = translator(request)
    async with contextlib.aclosing(history.transaction_pages(user_id, days)) as pages:
        async for page in pages:
            shown += [transaction_view(tr, schemas.movement_json(m, ids))
                      for m in page[:MAX_SHOWN - len(shown)]]
            if len(shown) >= MAX_SHOWN:
                break  # the rest is in the totals, and in the CSV and JSON files
    lang = request_language(request)
    query = f"?from={first}&to={last}"
    context = {
        "first": first.isoformat(), "last": last.isoformat(),
        "first_text": format_date(first, "long", locale=lang),
        "last_text": format_date(last, "long", locale=lang),
        "time_zone": days.time_zone, "movements": shown, "totals": totals,
        "hidden": max(totals.movements - len(shown), 0), "bad_range": bad,
        "issued_at": request.app[LEDGER].store.clock().isoformat(),
        "links": {name: str(request.app.router[route].url_for()) + query + extra
                  for name, route, extra in (
                      ("csv", "api_transactions_export", "&format=csv"),
                      ("json", "api_statement", ""))}}
    response = aiohttp_jinja2.render_template("statement.html", request, context,
                                              status=422 if bad else 200)
    response.headers["Cache-Control"] = "no-store"
    return response
