"""Usage: GET /api/v1/usage and the cabinet's Usage page (credits per day as a chart and a
table, predictions per model, month to date, a range picker). Days are the account's."""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import date
from typing import Any

import aiohttp_jinja2
from aiohttp import web
from babel.dates import format_date

from ledger.usage import MAX_RANGE_DAYS, UsageReport, UsageRow
from web.auth import api_user, page_user
from web.i18n import Translator, translator
from web.keys import LEDGER, MODELS
from web.problems import Problem

DATE_RE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
GROUPS = ("day", "model")
DATE_PATTERNS = {"en": "yyyy-MM-dd", "ru": "d MMMM y 'г.'"}


class BadRange(Exception):
    """One query field is not usable; `errors` maps it to a sentence in the request's
    language (the API keeps its field names and code in every language)."""

    def __init__(self, errors: dict[str, list[str]]) -> None:
        super().__init__("; ".join(f"{k}: {' '.join(v)}" for k, v in errors.items()))
        self.errors = errors


def _day(query: Mapping[str, str], name: str, tr: Translator) -> date | None:
    if name not in query:
        return None
    text = query[name]
    try:
        if DATE_RE.fullmatch(text):
            return date.fromisoformat(text)
    except ValueError:
        pass
    raise BadRange({name: [tr("Write a date as YYYY-MM-DD, for example 2026-12-01.")]})


def parse_range(query: Mapping[str, str], today: date, tr: Translator) -> tuple[date, date, str]:
    """`from` and `to` (both included; default: this month up to today) and `group_by`."""
    group_by = query.get("group_by", "day")
    if group_by not in GROUPS:
        raise BadRange({"group_by": [tr("Group by day or by model.")]})
    last = _day(query, "to", tr) or today
    first = _day(query, "from", tr) or last.replace(day=1)
    if first > last:
        raise BadRange({"from": [tr("The first day must not be after the last day.")]})
    if (last - first).days + 1 > MAX_RANGE_DAYS:
        raise BadRange({"to": [tr.ngettext("A range is at most %(num)s day long.",
                                           "A range is at most %(num)s days long.",
                                           MAX_RANGE_DAYS)]})
    return first, last, group_by


def _counts(row: UsageRow) -> dict[str, int]:
    return {"predictions": row.predictions, "items": row.items, "credits": row.credits}


def usage_json(report: UsageReport, group_by: str, names: Mapping[int, str]) -> dict[str, Any]:
    if group_by == "day":
        data = [{"date": str(r.day), **_counts(r)} for r in report.rows]
    else:
        data = [{"model_id": r.model_id,
                 "model": None if r.model_id is None else names.get(r.model_id),
                 **_counts(r)} for r in report.rows]
    return {"from": str(report.first), "to": str(report.last), "group_by": group_by,
            "time_zone": report.time_zone, "data": data, "total": _counts(report.total)}


def model_names(request: web.Request) -> dict[int, str]:
    return {spec.id: spec.name for spec in request.app[MODELS].specs()}


async def usage(request: web.Request) -> web.Response:
    """GET /api/v1/usage: one row per day of the range (zeros too) or per model charged."""
    user_id = await api_user(request)
    ledger, tr = request.app[LEDGER], translator(request)
    try:
        first, last, group_by = parse_range(request.query, await ledger.today(user_id), tr)
    except BadRange as exc:
        raise Problem(422, "validation_error", "The request is not valid", str(exc),
                      errors=exc.errors) from None
    report = await ledger.usage(user_id, first, last, group_by)
    return web.json_response(usage_json(report, group_by, model_names(request)))


# -- the page ---------------------------------------------------------------------------------

def _shown_day(day: date, lang: str) -> str:
    return format_date(day, DATE_PATTERNS.get(lang, DATE_PATTERNS["en"]), locale=lang)


def _model_name(model_id: int | None, names: Mapping[int, str], tr: Translator) -> str:
    if model_id is None:
        return tr("Direct charges")
    return names.get(model_id) or tr("Model %(id)s", id=model_id)


async def usage_page(request: web.Request) -> web.Response:
    user_id = await page_user(request)
    if user_id is None:
        raise web.HTTPSeeOther(request.app.router["login"].url_for())
    ledger, tr = request.app[LEDGER], translator(request)
    today = await ledger.today(user_id)
    status, field_errors = 200, {}
    # An empty field of the form is its default; the API refuses one (see _day).
    query = {k: v for k in ("from", "to") if (v := request.query.get(k, "").strip())}
    try:
        first, last, _ = parse_range(query, today, tr)
    except BadRange as exc:  # the form again with its reasons, and this month meanwhile
        status, field_errors = 422, exc.errors
        first, last = today.replace(day=1), today
    by_day = await ledger.usage(user_id, first, last, "day")
    by_model = await ledger.usage(user_id, first, last, "model")
    month = await ledger.usage(user_id, today.replace(day=1), today, "day")
    days = [{"date": str(r.day), "shown": _shown_day(r.day, tr.lang), **_counts(r)}
            for r in by_day.rows if r.day is not None]
    models = [{"name": _model_name(r.model_id, model_names(request), tr), **_counts(r)}
              for r in by_model.rows]
    chart = {"dates": [d["date"] for d in days], "labels": [d["shown"] for d in days],
             "credits": [d["credits"] for d in days], "series": tr("Credits charged")}
    context = {"days": days, "models": models, "total": _counts(by_day.total),
               "month": _counts(month.total), "time_zone": by_day.time_zone, "chart": chart,
               "form": {name: query.get(name, str(default))[:20]
                        for name, default in (("from", first), ("to", last))},
               "first": _shown_day(first, tr.lang), "last": _shown_day(last, tr.lang),
               "month_start": _shown_day(today.replace(day=1), tr.lang),
               "field_errors": field_errors, "max_days": MAX_RANGE_DAYS}
    response = aiohttp_jinja2.render_template("usage.html", request, context, status=status)
    response.headers["Cache-Control"] = "no-store"
    return response
