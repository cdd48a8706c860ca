"""What a request did to patient data, noted by the views and written to the audit log.

Views call `note(...)` once they know which patients a request touches; the audit hook
(`init_app`, wired in server/web/__init__.py) writes one chained record per noted patient
after the response is made, in a transaction of its own on the request's own connection
(server/web/context.py `db()`, server/audit/log.py), with the outcome taken from the HTTP
status. If the records cannot be written, the response is replaced by a 503: no patient
data leaves without its audit record. A request that noted nothing but
failed or was refused (any status from 400 on but 401) while naming an existing patient is
recorded for that patient as `denied` (403/404) or `failed` (400, 5xx, ...): the patient sees
attempts, and a request that fails before its view runs still leaves its record.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from dataclasses import dataclass

from flask import Flask, Response, g, request
from flask_babel import gettext as _
from sqlmodel import col, select
from telekol.server.audit import log as audit
from telekol.server.models import Patient
from telekol.server.web.context import db, door_of, unavailable

log = logging.getLogger("telekol.audit")
_ID = re.compile(r"[A-Za-z0-9\-.]{1,64}")
_ACTIONS = {"GET": "read", "HEAD": "read", "POST": "create", "PUT": "update",
            "PATCH": "update", "DELETE": "delete"}
WITHHELD = "the audit log could not be written, so the answer is withheld; try again"


@dataclass(frozen=True)
class Noted:
    """One access a request made: to which patients, what, and to which resource."""

    patient_ids: tuple[str | None, ...]
    action: str  # read | search | create | update | delete | export
    resource: str  # e.g. "Patient/abc", "Observation?patient=abc", "CarePlan/abc"
    detail: str = ""


def note(patient_ids: str | Iterable[str] | None, action: str, resource: str, *,
         detail: str = "") -> None:
    """Note that this request does `action` on `resource` for these patients.

    `None` notes an access that concerns no single patient (an administrator's search).
    """
    if patient_ids is None or isinstance(patient_ids, str):
        ids: tuple[str | None, ...] = (patient_ids,)
    else:
        ids = tuple(dict.fromkeys(patient_ids))
    g.setdefault("audit_notes", []).append(Noted(ids, action, resource, detail))


def noted() -> list[Noted]:
    """Return what this request has noted so far."""
    return list(g.get("audit_notes", []))


def init_app(app: Flask) -> None:
    """Write every request's noted accesses after the response (also after an error)."""
    app.after_request(_write_after)
    app.teardown_request(_write_on_error)


def write(entries: list[audit.Entry]) -> None:
    """Append records through the request's own session, in a transaction of their own.

    What the request has not committed is rolled back first, as the end of the request
    would: the records go in a fresh transaction, which on SQLite must begin with the
    write (server/audit/log.py), and they stay even when the request's own work failed.
    """
    if not entries:
        return
    session = db()
    session.rollback()
    try:
        audit.record_in(session, entries)
    except Exception:
        session.rollback()  # leave the session usable for the rest of the request
        raise


def _write_after(response: Response) -> Response:
    g.audit_written = True
    try:
        write(_entries(response.status_code))
    except Exception as error:
        # The class and endpoint only: a traceback could carry SQL parameters (names in the
        # record), and a path could hold a CPR number typed as an id.
        log.error("audit records could not be written (%s); %s %s answered 503 instead",
                  type(error).__name__, request.method, request.endpoint)
        return _withheld()
    return response


def _write_on_error(error: BaseException | None) -> None:
    # Only when an exception escaped before the after-request hooks ran.
    if error is None or g.get("audit_written"):
        return
    g.audit_written = True
    try:
        write(_entries(500))
    except Exception as failure:
        log.error("audit records of a failed request could not be written (%s)",
                  type(failure).__name__)


def _entries(status: int) -> list[audit.Entry]:
    notes = noted()
    outcome, door = audit.outcome_for(status), door_of(request.path)
    if notes:
        actor = audit.Actor.of(_user())
        return [audit.Entry(actor, patient_id, n.action, n.resource, door, outcome, status,
                            n.detail) for n in notes for patient_id in n.patient_ids]
    if status < 400 or status == 401:  # 401: nobody signed in to record
        return []
    named = _existing(_named_patients())
    actor = audit.Actor.of(_user()) if named else audit.Actor()
    if actor.user_id is None:
        return []
    action = "search" if request.method == "GET" and not request.view_args else _ACTIONS.get(
        request.method, request.method.lower())
    return [audit.Entry(actor, patient_id, action, request.path[:300], door, outcome, status,
                        "refused" if outcome == "denied" else "failed") for patient_id in named]


def _user():  # type: ignore[no-untyped-def]
    from telekol.server.web.auth import signed_in

    return signed_in()


def _named_patients() -> list[str]:
    """Return the patient ids a request's URL names (view args, `patient`, `subject`)."""
    found = [str(v) for k, v in (request.view_args or {}).items() if k == "patient_id"]
    for name in ("patient", "subject"):
        for raw in request.args.getlist(name):
            found += [part.strip().rstrip("/").rpartition("/")[2] for part in raw.split(",")]
    return [ident for ident in dict.fromkeys(found) if _ID.fullmatch(ident)]


def _existing(ids: list[str]) -> list[str]:
    if not ids:
        return []
    known = set(db().exec(select(Patient.id).where(col(Patient.id).in_(ids))).all())
    return [ident for ident in ids if ident in known]


def _withheld() -> Response:
    return unavailable(WITHHELD, _("The audit log could not be written, so this page is "
                                   "withheld. Please try again."))
