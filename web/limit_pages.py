"""The cabinet's spend limits: a summary on the cabinet (spent, left, a warning past 80 %)
and the Limits page with its two forms, the limits and the time zone. Every form checks CSRF."""

from __future__ import annotations

from typing import Any

import aiohttp_jinja2
from aiohttp import web
from aiohttp_session import get_session

from ledger import InvalidSetting, LimitsView, PeriodSpend
from web import schemas
from web.api import client_address
from web.auth import check_csrf, page_user
from web.bodies import whole_number
from web.i18n import translator
from web.keys import LEDGER
from web.messages import localize, localize_errors

WARN_PERCENT = 80
SUGGESTED_ZONES = ("UTC", "Europe/London", "Europe/Berlin", "Europe/Moscow", "Asia/Kolkata",
                   "Asia/Tokyo", "America/New_York", "America/Los_Angeles", "Australia/Sydney")


def period_view(period: PeriodSpend) -> dict[str, Any]:
    """One limit as the pages show it; `warn` once spending is past 80 % of the limit."""
    shown = schemas.period_json(period)
    limit = period.limit_credits
    percent = None if not limit else min(100, period.spent_credits * 100 // limit)
    warn = limit is not None and period.spent_credits * 100 > limit * WARN_PERCENT
    return {**shown, "percent": percent, "warn": warn}


def limits_view(view: LimitsView) -> dict[str, Any]:
    day, month = period_view(view.daily), period_view(view.monthly)
    return {"time_zone": view.time_zone, "day": day, "month": month,
            "any": day["limit"] is not None or month["limit"] is not None,
            "warnings": [name for name, p in (("daily", day), ("monthly", month))
                         if p["warn"]]}


async def _login(request: web.Request) -> int:
    user_id = await page_user(request)
    if user_id is None:
        raise web.HTTPSeeOther(request.app.router["login"].url_for())
    return user_id


async def limits_page(request: web.Request, status: int = 200, **extra: Any) -> web.Response:
    user_id = await _login(request)
    notice = (await get_session(request)).pop("flash", {})
    view = limits_view(await request.app[LEDGER].limits(user_id))
    context: dict[str, Any] = {
        "limits": view, "zones": SUGGESTED_ZONES, "field_errors": {},
        "message": notice.get("message"), "error": notice.get("error"),
        "form": {"daily_credits": _text(view["day"]["limit"]),
                 "monthly_credits": _text(view["month"]["limit"]),
                 "time_zone": view["time_zone"]}}
    context.update(extra)
    response = aiohttp_jinja2.render_template("limits.html", request, context, status=status)
    response.headers["Cache-Control"] = "no-store"
    return response


def _text(value: int | None) -> str:
    return "" if value is None else str(value)


def _limit_field(form: Any, name: str) -> int | str | None:
    """Blank is no limit; digits are a number; anything else stays text for the schema."""
    text = str(form.get(name, "")).strip()
    if not text:
        return None
    number = whole_number(text, 13)
    return text if number is None else number


async def set_limits(request: web.Request) -> web.Response:
    user_id = await _login(request)
    form = await request.post()
    await check_csrf(request, form)
    fields = {name: _limit_field(form, name) for name in ("daily_credits", "monthly_credits")}
    shown = {name: str(form.get(name, ""))[:20] for name in fields}
    errors = schemas.LimitsRequest().validate(fields)
    tr = translator(request)
    if errors:
        return await limits_page(request, 422, field_errors=localize_errors(tr, errors),
                                 form={**shown, "time_zone": str(form.get("time_zone", ""))},
                                 error=tr("Please correct the fields below."))
    await request.app[LEDGER].set_limits(user_id, fields["daily_credits"],  # type: ignore[arg-type]
                                         fields["monthly_credits"],  # type: ignore[arg-type]
                                         client_address(request))
    (await get_session(request))["flash"] = {"message": tr("Spend limits saved.")}
    raise web.HTTPSeeOther(request.app.router["cabinet_limits"].url_for())


async def set_time_zone(request: web.Request) -> web.Response:
    user_id = await _login(request)
    form = await request.post()
    await check_csrf(request, form)
    zone = str(form.get("time_zone", "")).strip()
    tr = translator(request)
    try:
        await request.app[LEDGER].set_time_zone(user_id, zone, client_address(request))
    except InvalidSetting as exc:
        return await limits_page(request, 422, field_errors={"time_zone": [localize(tr, str(exc))]},
                                 form={"time_zone": zone[:64]},
                                 error=tr("Please correct the fields below."))
    (await get_session(request))["flash"] = {"message": tr("Time zone set to %(zone)s.",
                                                           zone=zone)}
    raise web.HTTPSeeOther(request.app.router["cabinet_limits"].url_for())
