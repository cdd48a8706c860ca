"""Why an alert was raised, in the reader's language, from what the rule found.

Rules store structured `details` (server/alerts/rules/); the stored `reason` is an English machine
text for the API. Screens call `reason_words(rule, details, severity)` and get a sentence
from the translation catalogue with local numbers, units and times. A rule this module does
not know falls back to the stored English reason.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_babel import ngettext
from telekol.server.web.words import label, number, quantity, when

Details = Mapping[str, Any]
SEVERITIES: dict[str, Any] = {"red": _l("Red"), "yellow": _l("Yellow"), "blue": _l("Blue"),
                              "green": _l("Green"), "paused": _l("Paused")}
NEWS2_RISK: dict[str, Any] = {
    "high risk": _l("high risk"), "medium risk": _l("medium risk"),
    "low-medium risk, 3 in a single parameter": _l("low-medium risk, 3 in a single parameter")}


def severity_word(severity: str) -> str:
    """Return the word for a severity ("Rød")."""
    found = SEVERITIES.get(severity)
    return str(found) if found is not None else severity


def reason_words(rule: str, details: Details, severity: str, fallback: str = "") -> str:
    """Return why the rule fired, in words, with "measured earlier" when it came late."""
    kind = rule.split(":", 1)[0]
    render = _RENDERERS.get(rule) or _RENDERERS.get(kind)
    try:
        text = render(rule, details, severity) if render else fallback
    except (KeyError, TypeError, ValueError):
        return fallback  # details from an older rule version: say what was stored
    if details.get("late") and details.get("taken_at") and kind != "device":
        text += " " + _("(measured %(when)s, sent later)",
                        when=when(_instant(details["taken_at"])))
    return text[:1].upper() + text[1:]  # "iltmætning ..." starts a sentence too


def _instant(raw: Any) -> datetime | None:
    try:
        return datetime.fromisoformat(str(raw).replace("Z", "+00:00"))
    except ValueError:
        return None


def _threshold(rule: str, d: Details, severity: str) -> str:
    code = str(d.get("measurement") or rule.split(":", 1)[1])
    values = {"what": label(code), "value": quantity(code, d["value"]),
              "limit": quantity(code, d["limit"])}
    low = d.get("direction") == "low"
    if severity == "red":
        text = (_("%(what)s %(value)s is below the red limit %(limit)s", **values) if low else
                _("%(what)s %(value)s is above the red limit %(limit)s", **values))
    else:
        text = (_("%(what)s %(value)s is below the yellow limit %(limit)s", **values) if low
                else _("%(what)s %(value)s is above the yellow limit %(limit)s", **values))
    who, at = d.get("set_by"), _instant(d.get("set_at")) if d.get("set_at") else None
    if who and at:
        text += " " + _("(set by %(who)s on %(date)s)", who=who, date=when(at)[:10])
    return text


def _spo2_drop(_rule: str, d: Details, _severity: str) -> str:
    return _("SpO2 fell %(fall)s points since yesterday (%(before)s → %(now)s); "
             "alert above %(limit)s points", fall=number(d["fall"]),
             before=quantity("spo2", d["yesterday_mean"]), now=quantity("spo2", d["value"]),
             limit=number(d["limit"]))


def _spo2_baseline(_rule: str, d: Details, _severity: str) -> str:
    return _("SpO2 %(value)s is %(below)s points below its %(days)s-day average %(mean)s "
             "(%(n)s readings); alert above %(limit)s points",
             value=quantity("spo2", d["value"]), below=number(d["below"], places=1),
             days=number(d["days"]), mean=quantity("spo2", round(d["mean"], 1)),
             n=d["readings"], limit=number(d["limit"]))


def _spirometry(rule: str, d: Details, _severity: str) -> str:
    code = rule.split(":", 1)[1]
    values = {"what": label(code), "value": quantity(code, d["value"]),
              "days": number(d["days"]), "mean": quantity(code, d["mean"]), "n": d["readings"],
              "factor": number(d["sd_factor"], places=3).rstrip("0").rstrip(",.")}
    if d.get("sd_below") is None:
        return _("%(what)s %(value)s is below its %(days)s-day average %(mean)s, which did not "
                 "vary (%(n)s readings); alert beyond %(factor)s SD", **values)
    return _("%(what)s %(value)s is %(sd)s SD below its %(days)s-day average %(mean)s "
             "(%(n)s readings); alert beyond %(factor)s SD",
             sd=number(d["sd_below"], places=1), **values)


def _weight(_rule: str, d: Details, _severity: str) -> str:
    return _("Weight rose %(gain)s in %(days)s days (%(before)s → %(now)s); alert from "
             "+%(limit)s", gain=quantity("weight", d["gain"]), days=number(d["days"]),
             before=quantity("weight", d["lowest"]), now=quantity("weight", d["value"]),
             limit=quantity("weight", d["limit_kg"]))


def _cat(_rule: str, d: Details, _severity: str) -> str:
    return _("CAT rose %(rise)s points (%(before)s → %(now)s) since %(when)s; %(mcid)s points "
             "is the smallest change that matters to patients", rise=number(d["rise"]),
             before=number(d["previous"]), now=number(d["value"]),
             when=when(_instant(d["previous_taken_at"])), mcid=number(d["mcid"]))


def _symptoms(_rule: str, d: Details, _severity: str) -> str:
    reported = ", ".join(label(code) for code in d["reported"])
    text = _("The patient reports %(symptoms)s in the last %(hours)s hours (%(n)s of 3 "
             "cardinal symptoms; red from %(red)s)", symptoms=reported,
             hours=number(d["window_hours"]), n=d["cardinal"], red=number(d["red_from"]))
    if d.get("earlier_taken_at"):
        text += "; " + _("worse symptoms also on %(when)s",
                         when=when(_instant(d["earlier_taken_at"])))
    return text


def _news2(_rule: str, d: Details, _severity: str) -> str:
    parts = ", ".join(f"{label(code)} {quantity(code, d['values'][code])} → {points}"
                      for code, points in d["scores"].items())
    risk = NEWS2_RISK.get(str(d.get("risk")), d.get("risk"))
    return _("NEWS2 %(score)s (%(risk)s, SpO2 scale %(scale)s): %(parts)s; partial score from "
             "%(n)s of %(total)s parameters, air assumed", score=d["score"], risk=risk,
             scale=d["scale"], parts=parts, n=d["parameters_present"],
             total=d["parameters_total"])


def _missing(rule: str, d: Details, _severity: str) -> str:
    code = str(d.get("code") or rule.split(":", 1)[1])
    return _("No %(what)s received: due %(due)s, not there by %(deadline)s",
             what=label(code), due=when(_instant(d["due"])),
             deadline=when(_instant(d["deadline"])))


def _device(rule: str, d: Details, _severity: str) -> str:
    device = d.get("device_id") or ""
    if rule == "device:silent":
        hours = round(float(d["silent_hours"]))
        return ngettext("Device %(device)s has sent nothing for %(num)s hour (last seen "
                        "%(when)s)", "Device %(device)s has sent nothing for %(num)s hours "
                        "(last seen %(when)s)", hours, device=device,
                        when=when(_instant(d["last_seen_at"])))
    if rule == "device:battery":
        return _("Device %(device)s: battery %(value)s %% is below %(limit)s %%", device=device,
                 value=number(d["battery_percent"]), limit=number(d["limit_percent"]))
    if rule == "device:rejections":
        return _("Device %(device)s: the last %(n)s messages were rejected", device=device,
                 n=d["rejections"])
    minutes = number(abs(float(d["offset_minutes"])), places=0)
    if d.get("side") == "ahead" or float(d["offset_minutes"]) > 0:
        return _("The clock of device %(device)s is about %(minutes)s minutes fast",
                 device=device, minutes=minutes)
    return _("The clock of device %(device)s is about %(minutes)s minutes slow",
             device=device, minutes=minutes)


_RENDERERS: dict[str, Callable[[str, Details, str], str]] = {
    "threshold": _threshold, "baseline:spo2-drop": _spo2_drop,
    "baseline:spo2-below-baseline": _spo2_baseline, "baseline": _spirometry,
    "weight-gain": _weight, "cat-mcid": _cat, "symptoms": _symptoms, "news2": _news2,
    "missing": _missing, "device": _device,
}


def alert_words(alert: Mapping[str, Any] | Any) -> dict[str, str]:
    """Return an alert's texts for a screen: why it has its colour (with who set the limit, and
    short), and what came last."""
    get = alert.get if isinstance(alert, Mapping) else lambda k, d=None: getattr(alert, k, d)
    severity = str(get("severity"))
    deciding = get("severity_details") or get("details") or {}
    latest = get("details") or {}
    fallback = str(get("severity_reason") or get("reason") or "")
    return {"severity_word": severity_word(severity),
            "deciding": reason_words(str(get("rule")), deciding, severity, fallback),
            "deciding_short": reason_words(str(get("rule")), {**deciding, "set_by": None},
                                           severity, fallback),
            "latest": reason_words(str(get("rule")), {**latest, "set_by": None},
                                   _latest_severity(str(get("rule")), latest, severity),
                                   str(get("reason") or ""))}


def _latest_severity(rule: str, details: Details, worst: str) -> str:
    """Return the colour the latest reading had on its own (a threshold names its own)."""
    return str(details.get("severity") or worst) if rule.startswith("threshold:") else worst
