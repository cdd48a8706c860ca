"""COPD Assessment Test (CAT): a rise of at least the minimal clinically important difference."""

from __future__ import annotations

from telekol.server.alerts.rules.snapshot import PatientContext, Reading
from telekol.server.alerts.rules.wording import moment, num
from telekol.server.alerts.triage import AlertRequest


def cat_rise(reading: Reading | None, ctx: PatientContext) -> list[AlertRequest]:
    """Ask for a yellow alert when the CAT total rose by the MCID or more since the last one."""
    if reading is None or reading.code != "cat":
        return []
    earlier = [r for r in ctx.recent if r.code == "cat" and r.taken_at < reading.taken_at]
    if not earlier:
        return []
    previous = max(earlier, key=lambda r: r.taken_at)
    rise = round(reading.value - previous.value, 6)
    mcid = ctx.parameters.cat_mcid.value
    if rise < mcid:
        return []
    when = moment(ctx.local(previous.taken_at))
    reason = (f"CAT rose {num('cat', rise)} points ({num('cat', previous.value)} → "
              f"{num('cat', reading.value)}) since {when}; "
              f"{num('cat', mcid)} points is the minimal clinically important difference")
    details: dict[str, object] = {
        "value": reading.value, "previous": previous.value,
        "previous_taken_at": previous.taken_at.isoformat(), "rise": rise, "mcid": mcid}
    return [AlertRequest("cat-mcid", "yellow", reason, details)]
