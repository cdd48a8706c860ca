"""NEWS2 (RCP 2017) from the vital signs present, SpO2 Scale 2 only for hypercapnic patients."""

from __future__ import annotations

from datetime import timedelta

from telekol.server.alerts.rules.snapshot import PatientContext, Reading
from telekol.server.alerts.rules.wording import num
from telekol.server.alerts.triage import AlertRequest

INF = float("inf")
# RCP NEWS2 Chart 1 (clinical-codes.md §3): (highest value in band, score), lowest band first.
# Scale 2 lists the on-air rows only: home readings carry no oxygen information (air assumed).
# fmt: off
BANDS: dict[str, tuple[tuple[float, int], ...]] = {
    "resp_rate": ((8, 3), (11, 1), (20, 0), (24, 2), (INF, 3)),
    "spo2": ((91, 3), (93, 2), (95, 1), (INF, 0)),
    "spo2_scale2": ((83, 3), (85, 2), (87, 1), (INF, 0)),
    "bp_sys": ((90, 3), (100, 2), (110, 1), (219, 0), (INF, 3)),
    "pulse": ((40, 3), (50, 1), (90, 0), (110, 1), (130, 2), (INF, 3)),
    "temperature": ((35.0, 3), (36.0, 1), (38.0, 0), (39.0, 1), (INF, 2)),
}
# fmt: on
MEASURED = ("resp_rate", "spo2", "bp_sys", "pulse", "temperature")
# Names and units as on the RCP chart.
NAMES = {"resp_rate": ("respiration rate", "/min"), "spo2": ("SpO2", "%"),
         "bp_sys": ("systolic BP", "mmHg"), "pulse": ("pulse", "/min"),
         "temperature": ("temperature", "°C")}
NOT_MEASURED_AT_HOME = ("air or oxygen", "consciousness")
PARAMETERS = len(MEASURED) + len(NOT_MEASURED_AT_HOME)  # 7


def score(code: str, value: float, scale: int = 1) -> int:
    """Return the NEWS2 score of one parameter's value (SpO2 on the given scale, on air)."""
    bands = BANDS["spo2_scale2" if code == "spo2" and scale == 2 else code]
    return next(points for highest, points in bands if value <= highest)


def news2(reading: Reading | None, ctx: PatientContext) -> list[AlertRequest]:
    """Ask for an alert when the (partial) NEWS2 reaches a trigger threshold."""
    if reading is None or reading.code not in MEASURED:
        return []
    scale = 2 if ctx.hypercapnic else 1
    values = _session(reading, ctx)
    scores = {code: score(code, value, scale) for code, value in values.items()}
    total = sum(scores.values())
    found = _trigger(total, max(scores.values()), ctx)
    if found is None:
        return []
    severity, risk = found
    parts = ", ".join(f"{NAMES[c][0]} {num(c, values[c])} {NAMES[c][1]} → {scores[c]}"
                      for c in scores)
    missing = [NAMES[c][0] for c in MEASURED if c not in values]
    reason = (f"NEWS2 {total} ({risk}, SpO2 scale {scale}): {parts}; "
              f"partial NEWS2 from {len(values)} of {PARAMETERS} parameters "
              f"(not measured: {', '.join([*missing, 'consciousness'])}; air assumed)")
    details: dict[str, object] = {
        "score": total, "risk": risk, "scale": scale, "scores": scores, "values": values,
        "parameters_present": len(values), "parameters_total": PARAMETERS, "missing": missing,
        "oxygen": "air (assumed)"}
    return [AlertRequest("news2", severity, reason, details)]


def _session(reading: Reading, ctx: PatientContext) -> dict[str, float]:
    """Return the value closest in time per NEWS2 parameter within the session window."""
    window = timedelta(minutes=ctx.parameters.news2_window_minutes.value)
    values = {reading.code: reading.value}
    for code in MEASURED:
        if code == reading.code:
            continue
        near = ctx.nearest(code, reading.taken_at, reading.taken_at - window,
                           reading.taken_at + window + timedelta(microseconds=1))
        if near is not None:
            values[code] = near.value
    return {code: values[code] for code in MEASURED if code in values}


def _trigger(total: int, worst: int, ctx: PatientContext) -> tuple[str, str] | None:
    """Map the RCP trigger thresholds to a severity and risk wording (docs/alerting.md)."""
    p = ctx.parameters
    if total >= p.news2_high.value:
        return "red", "high risk"
    if total >= p.news2_medium.value:
        return "yellow", "medium risk"
    if worst >= p.news2_single.value:
        return "yellow", "low-medium risk, 3 in a single parameter"
    return None
