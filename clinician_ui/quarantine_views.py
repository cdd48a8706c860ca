"""The quarantine page for administrators: rejected device messages per device, paged.

What the gateway kept (reasons, time, size, SHA-256 of the whole payload) and, per device,
how many rejections went beyond its quarantine quota and were only counted
(server/ingest/quarantine.py). The payloads themselves stay off the page: they may hold a
patient's readings, and administrators see no clinical data.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlencode

from flask import render_template, request, url_for
from flask_babel import gettext as _
from sqlalchemy import func
from sqlmodel import col, select
from telekol.clinician_ui.admin_views import admin_only, local_time
from telekol.clinician_ui.blueprint import bp
from telekol.server.models import Device, QuarantinedMessage, QuarantineOverflow
from telekol.server.web.auditing import note
from telekol.server.web.context import db

PAGE = 50
_ROW_ID = re.compile(r"\A[0-9]{1,18}\Z")  # ASCII digits that fit a 64-bit id


@bp.get("/admin/quarantine")
@admin_only
def admin_quarantine():  # type: ignore[no-untyped-def]
    """List rejected messages newest first, for one device or all, with a summary per device."""
    device = request.args.get("device", "").strip()[:64]
    before = request.args.get("before", "")
    if before and not _ROW_ID.match(before):
        return _page(device, error=_("“before” must be a message number.")), 400
    query = select(QuarantinedMessage).order_by(col(QuarantinedMessage.id).desc()).limit(PAGE + 1)
    if device:
        query = query.where(QuarantinedMessage.device_id == device)
    if before:
        query = query.where(col(QuarantinedMessage.id) < int(before))
    rows = list(db().exec(query).all())
    older = None
    if len(rows) > PAGE:
        rows = rows[:PAGE]
        shown = {"device": device} if device else {}
        older = f"{url_for('ui.admin_quarantine')}?{urlencode({**shown, 'before': rows[-1].id})}"
    devices = _summary()
    # A rejected payload from a patient's device may hold that patient's readings.
    named = {r.device_id for r in rows if r.device_id} | {d["device_id"] for d in devices}
    owners = db().exec(select(Device.patient_id).where(col(Device.id).in_(named))).all()
    note(sorted({o for o in owners if o}) or None, "read", "QuarantinedMessage")
    return _page(device, rows=rows, older=older, devices=devices)


def _summary() -> list[dict[str, Any]]:
    """Return per device: messages kept, the last one's time, and what went over the quota."""
    kept = db().exec(select(QuarantinedMessage.device_id, func.count(),
                            func.max(QuarantinedMessage.received_at))
                     .group_by(QuarantinedMessage.device_id)).all()
    found: dict[str, dict[str, Any]] = {
        device or "": {"device_id": device or "", "kept": count, "last_at": last,
                       "dropped": 0, "dropped_bytes": 0} for device, count, last in kept}
    for over in db().exec(select(QuarantineOverflow)).all():
        entry = found.setdefault(over.device_id, {"device_id": over.device_id, "kept": 0,
                                                  "last_at": over.last_at})
        entry.update(dropped=over.dropped, dropped_bytes=over.dropped_bytes,
                     last_at=max(entry["last_at"], over.last_at))
    return sorted(found.values(), key=lambda d: d["last_at"], reverse=True)


def _page(device: str, **found: Any) -> str:
    found.setdefault("rows", [])
    found.setdefault("devices", [])
    return render_template("admin_quarantine.html", device=device, local=local_time, **found)
