"""A work-list row in the reader's words: status, why, since when, trend, who must act."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from telekol.server.care.access import acts_on_alerts
from telekol.server.db import utcnow
from telekol.server.models import Alert, Observation, User
from telekol.server.web.alert_words import alert_words, severity_word
from telekol.server.web.words import ago, clock, label, number, quantity, unit, when
from telekol.server.worklist.details import TREND_DAYS, Details
from telekol.server.worklist.rows import Row
from telekol.server.worklist.trend import direction, sparkline

ALERT_STATES: dict[str, Any] = {"open": _l("Not acknowledged"), "acknowledged": _l("Acknowledged"),
                                "snoozed": _l("Snoozed"), "resolved": _l("Resolved")}
TRENDS: dict[str, Any] = {"up": _l("rising"), "down": _l("falling"), "flat": _l("steady")}
ARROWS = {"up": "↗", "down": "↘", "flat": "→"}
SHOWN_CODES = ("spo2", "pulse", "weight", "bp", "fev1", "temperature", "cat")


def row_view(row: Row, details: Details, now: datetime, user: User) -> dict[str, Any]:
    """Return everything the row template shows for one patient."""
    status, patient = row.status, row.patient
    extra = details.rows.get(patient.id)
    deciding = status.deciding
    alerts = [_alert_view(a, row, details, now, user) for a in status.alerts]
    return {
        "id": patient.id, "name": patient.display, "cpr": f"{patient.cpr[:6]}-{patient.cpr[6:]}",
        "status": status.shown, "status_word": severity_word(status.shown),
        "severity": status.severity, "severity_word": severity_word(status.severity),
        "sort": list(row.sort_key()), "alerts": alerts,
        "deciding": next((a for a in alerts if deciding and a["id"] == deciding.id), None),
        "others": len([a for a in status.alerts if a.status != "snoozed"]) - (1 if deciding else 0),
        "since": _moment(status.since, now),
        "last_reading": _moment(row.last_reading_at, now),
        "trend": _trend(extra.code, extra.series, now) if extra else None,
        "latest": _latest(extra.latest) if extra else [],
        "acting": _acting(row, details, deciding),
        "mine": row.mine, "can_act": acts_on_alerts(user),
        "can_acknowledge_all": row.mine and acts_on_alerts(user) and any(
            a["mine"] and a["status"] in ("open", "snoozed") for a in alerts),
    }


def _moment(at: datetime | None, now: datetime) -> dict[str, str] | None:
    if at is None:
        return None
    return {"iso": at.isoformat(), "ago": ago(at, now), "when": when(at)}


def _alert_view(alert: Alert, row: Row, details: Details, now: datetime,
                user: User) -> dict[str, Any]:
    words = alert_words(alert)
    owner = row.responsible.get(alert.id or 0)
    acknowledged = details.users.get(alert.acknowledged_by or 0)
    return {
        "id": alert.id, "severity": alert.severity, "severity_word": words["severity_word"],
        "status": alert.status, "status_word": str(ALERT_STATES.get(alert.status, alert.status)),
        "rule": alert.rule, "why": words["deciding"], "why_short": words["deciding_short"],
        "latest": words["latest"] if alert.count > 1 and (
            alert.last_observation_id != alert.severity_observation_id
            or alert.last_at != alert.severity_at) else None,
        "count": alert.count, "first": _moment(alert.severity_at or alert.created_at, now),
        "last": _moment(alert.last_at or alert.updated_at, now),
        "acknowledged": _("Acknowledged by %(who)s at %(time)s", who=acknowledged,
                          time=_day_and_time(alert.acknowledged_at, now))
        if acknowledged and alert.acknowledged_at else None,
        "note": alert.note if alert.status == "acknowledged" else None,
        "snoozed_until": when(alert.snoozed_until) if alert.status == "snoozed" else None,
        "snooze_reason": alert.snooze_reason,
        "owner": details.organizations.get(owner or "", owner or ""),
        "mine": owner == user.organization_id and acts_on_alerts(user),
    }


def _day_and_time(at: datetime | None, now: datetime) -> str:
    """Return "10:15" for today, else "01.12.2026 10:15"."""
    if at is None:
        return ""
    return clock(at) if when(at)[:10] == when(now)[:10] else when(at)


def _acting(row: Row, details: Details, deciding: Alert | None) -> dict[str, str] | None:
    """Return who must act on the patient now, or who has acknowledged it."""
    if row.status.paused:
        return {"kind": "paused", "text": _("Monitoring is paused")}
    if deciding is None:
        return None
    if deciding.status == "acknowledged":
        who = details.users.get(deciding.acknowledged_by or 0, "")
        at = _day_and_time(deciding.acknowledged_at, utcnow())
        return {"kind": "acknowledged",
                "text": _("Acknowledged by %(who)s at %(time)s", who=who, time=at) if who
                else _("Acknowledged")}
    owner = row.responsible.get(deciding.id or 0)
    if owner and owner == row.viewer_org:
        return {"kind": "mine", "text": _("Your organisation must act")}
    name = details.organizations.get(owner or "", owner or "")
    return {"kind": "other", "text": _("%(org)s must act", org=name)}


def _trend(code: str, series: list[tuple[datetime, float]], now: datetime) -> dict[str, Any]:
    start = now - timedelta(days=TREND_DAYS)
    way = direction(series)
    first, last = (series[0][1], series[-1][1]) if series else (None, None)
    words = (_("%(what)s %(trend)s over %(days)s days: %(first)s → %(last)s",
               what=label(code), trend=TRENDS[way], days=TREND_DAYS,
               first=number(first, code), last=quantity(code, last))
             if way else _("%(what)s: too few readings in %(days)s days for a trend",
                           what=label(code), days=TREND_DAYS))
    return {"code": code, "label": label(code), "direction": way,
            "arrow": ARROWS.get(way, ""), "points": sparkline(series, start, now),
            "words": words, "latest": quantity(code, last) if last is not None else None}


def _latest(latest: dict[str, Observation]) -> list[dict[str, str]]:
    shown = []
    for code in SHOWN_CODES:
        row = latest.get(code)
        if row is None or row.value is None:
            continue
        value = quantity(code, row.value) if code != "bp" else _pressure(row)
        shown.append({"code": code, "label": label(code), "value": value,
                      "severity": row.severity or "", "when": when(row.effective)})
    return shown


def _pressure(row: Observation) -> str:
    parts = {c["code"]["coding"][0]["code"]: c["valueQuantity"]["value"]
             for c in json.loads(row.resource).get("component", [])}
    return f"{number(parts.get('8480-6'))}/{number(parts.get('8462-4'))} {unit('bp')}"
