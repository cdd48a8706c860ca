"""What one demo measuring session yields: the hub's wire objects (pure, seeded).

A morning session is the oximeter and the scale, the blood-pressure monitor on Mondays and
Thursdays, the spirometer on Mondays, Wednesdays and Fridays (daily, with the thermometer,
while the patient feels worse); an evening session is the oximeter and the symptom diary,
with the CAT on Sundays. Patients now and then skip a session or the diary. Noise is
bounded, so a stable patient's values never leave the programme's limits. The history
(server/demo/history.py) and the simulator (device_gateway/simulator.py) both build their
messages here, in the contract's format (CONTRACT §3, docs/devices.md).
"""

from __future__ import annotations

import random
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from telekol.server.demo.profiles import HISTORY_DAYS, Profile, Vitals, vitals

TIMEZONE = ZoneInfo("Europe/Copenhagen")
MEASUREMENTS, ANSWERS = "measurements", "questionnaire-responses"  # topic kinds
# Half-widths of the uniform noise per reading (FEV1 as a fraction of its value).
NOISE = {"spo2": 1.5, "pulse": 6.0, "weight": 0.4, "bp_sys": 9.0, "bp_dia": 6.0,
         "fev1": 0.06, "temperature": 0.2}
SKIPPED = {"morning": 0.05, "evening": 0.08, "diary": 0.12}  # chance a patient skips it
BP_DAYS, FEV1_DAYS, CAT_DAY = (0, 3), (0, 2, 4), 6  # weekdays, Monday = 0
FEELING_WORSE = 0.3  # worsening level from which the patient measures more
# Level from which each diary question is answered "yes" (± a little each day).
SYMPTOM_FROM = {"more_cough": 0.15, "more_breathless": 0.3, "more_sputum": 0.45,
                "sputum_colour_changed": 0.6}
HUB = {"model": "TeleKOL demo hub", "firmware": "1.0"}

Message = tuple[str, dict[str, Any]]  # (topic kind, wire object)


def session(profile: Profile, slot: str, taken_at: datetime, weekday: int, day: float,
            level: float, rng: random.Random, msg_prefix: str, *, light: bool = False,
            spacing: timedelta = timedelta(minutes=1),
            fev1_days: tuple[int, ...] = FEV1_DAYS) -> list[Message]:
    """Return the objects a hub sends after one `slot` session ("morning" or "evening").

    `weekday` (Monday = 0) picks the instruments of the day; `day` and `level` place the
    patient on their history's day axis and in a worsening (demo_profiles.vitals). The
    instruments are taken `spacing` apart from `taken_at` on. `light`: the oximeter alone;
    `fev1_days`: the weekdays of the spirometer (daily while the patient feels worse).
    """
    if profile.exacerbation is not None:
        level = max(level, profile.exacerbation.level(day))
    worse = level >= FEELING_WORSE  # a patient who feels worse never skips
    if not worse and rng.random() < SKIPPED[slot]:
        return []
    now = vitals(profile, day, level)
    kit = instruments(slot, weekday, now, rng, spirometer=worse or weekday in fev1_days,
                      thermometer=worse)[:1 if light else None]
    device = {**HUB, "battery": rng.randint(55, 100)}
    found: list[Message] = [
        (MEASUREMENTS, {"msg_id": f"{msg_prefix}-{name}", "taken_at": _text(taken_at + spacing * i),
                        "readings": readings, "device": device})
        for i, (name, readings) in enumerate(kit)]
    if slot == "evening" and not light and (worse or rng.random() >= SKIPPED["diary"]):
        answers: dict[str, tuple[str, dict[str, Any]]] = {
            "diary": ("copd-symptoms", symptom_diary(profile, day, level, rng))}
        if weekday == CAT_DAY:
            total = round(now.cat + rng.choice((-1, 0, 0, 0, 1)))
            answers["cat"] = ("cat", cat_answers(total, rng))
        for i, (name, (kind, values)) in enumerate(answers.items(), start=len(kit)):
            found.append((ANSWERS, {"msg_id": f"{msg_prefix}-{name}",
                                    "taken_at": _text(taken_at + spacing * i),
                                    "questionnaire": kind, "answers": values}))
    return found


def instruments(slot: str, weekday: int, now: Vitals, rng: random.Random, *, spirometer: bool,
                thermometer: bool) -> list[tuple[str, list[dict[str, Any]]]]:
    """Return (instrument, readings) of one session, in the order they are used."""
    kit = [("oxi", oximetry(now, rng))]
    if slot == "morning":
        kit.append(("scale", [_reading("weight", now.weight, rng, 1)]))
        if weekday in BP_DAYS:
            kit.append(("bp", blood_pressure(now, rng)))
        if spirometer:
            kit.append(("spiro", [_reading("fev1", now.fev1, rng, 2, relative=True)]))
        if thermometer:
            kit.append(("temp", [_reading("temperature", now.temperature, rng, 1)]))
    return kit


def oximetry(now: Vitals, rng: random.Random) -> list[dict[str, Any]]:
    """Return SpO2 and pulse from the pulse oximeter."""
    spo2 = _reading("spo2", now.spo2, rng, 0)
    spo2["value"] = min(spo2["value"], 99)
    return [spo2, _reading("pulse", now.pulse, rng, 0)]


def blood_pressure(now: Vitals, rng: random.Random) -> list[dict[str, Any]]:
    """Return systolic and diastolic pressure (always together, diastolic below systolic)."""
    systolic = _reading("bp_sys", now.bp_sys, rng, 0)
    diastolic = _reading("bp_dia", now.bp_dia, rng, 0)
    diastolic["value"] = min(diastolic["value"], systolic["value"] - 20)
    return [systolic, diastolic]


def symptom_diary(profile: Profile, day: float, level: float,
                  rng: random.Random) -> dict[str, bool]:
    """Return the diary's answers: "yes" as the worsening deepens, now and then a cold."""
    answers = {code: level > start + rng.uniform(-0.08, 0.08)
               for code, start in SYMPTOM_FROM.items()}
    answers["more_cough"] = answers["more_cough"] or rng.random() < profile.odd_days
    share = min(max(day / HISTORY_DAYS, 0.0), 1.0)
    answers["more_breathless"] = (answers["more_breathless"]
                                  or rng.random() < profile.breathless * share)
    return answers


def cat_answers(total: int, rng: random.Random) -> dict[str, int]:
    """Return eight CAT items (0-5) that add up to `total` (clipped to 0-40)."""
    items = dict.fromkeys(("cough", "phlegm", "chest_tightness", "breathlessness",
                           "activities", "confidence", "sleep", "energy"), 0)
    for _ in range(min(max(total, 0), 40)):
        items[rng.choice([k for k, v in items.items() if v < 5])] += 1
    return items


def _reading(code: str, centre: float, rng: random.Random, decimals: int, *,
             relative: bool = False) -> dict[str, Any]:
    spread = NOISE[code] * (centre if relative else 1.0)
    value = round(centre + rng.uniform(-spread, spread), decimals)
    return {"code": code, "value": int(value) if decimals == 0 else value}


def _text(moment: datetime) -> str:
    return moment.astimezone(TIMEZONE).isoformat(timespec="seconds")
