"""The patient's "Who has seen my data": who looked at what, per person and day, in plain words.

The grouping is server/audit/digest.py; this module turns the groups into sentences
("looked at your measurements 3 times") in the page's language.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any

from flask import render_template, request
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_babel import ngettext
from flask_login import login_required
from telekol.clinician_ui.blueprint import bp
from telekol.clinician_ui.my_views import WEEKDAYS, own_patient
from telekol.clinician_ui.patient_page_views import LOCAL
from telekol.server.audit import log as audit
from telekol.server.audit.digest import Access, PersonDay, group_by_person_and_day, whole_days
from telekol.server.db import utcnow
from telekol.server.web.auditing import note
from telekol.server.web.auth import the_user
from telekol.server.web.context import db

PAGE_SIZE = 300  # records (live pushes not counted) per page; a page ends at a day's end
ROLES = {"nurse": _l("Nurse"), "doctor": _l("Doctor"), "gp": _l("General practitioner"),
         "secretary": _l("Secretary"), "admin": _l("Administrator"), "patient": _l("Patient")}
ACTIONS = {"read": _l("looked at"), "search": _l("looked up"), "create": _l("added"),
           "update": _l("changed"), "delete": _l("deleted"), "export": _l("exported")}
# Every kind of resource the doors record (server/audit/log.py resource_kind), in words a
# patient understands; tests/test_access_log_words.py finds the kinds in the sources.
RESOURCES = {
    "Patient": _l("your record"), "Observation": _l("your measurements"),
    "CarePlan": _l("your care plan"), "Message": _l("messages about you"),
    "MessageReadMark": _l("messages about you"),
    "QuestionnaireResponse": _l("your questionnaire answers"),
    "AuditEvent": _l("who has seen your data"), "AuditRecord": _l("who has seen your data"),
    "Alert": _l("alerts about you"), "InboxItem": _l("alerts about you in the doctor's inbox"),
    "Consent": _l("your consent"), "EpisodeOfCare": _l("your course of home monitoring"),
    "CareTeam": _l("your care team"), "Provenance": _l("where your data came from"),
    "ThresholdProposal": _l("a proposed change of your limits"),
    "Flag": _l("the pause of your monitoring"),
    "MonitoringPause": _l("pauses of your monitoring"),
    "Handover": _l("handing over responsibility for you"), "Task": _l("tasks about you"),
    "Device": _l("your measuring device"), "User": _l("your login"),
    "QuarantinedMessage": _l("rejected data from your devices"),
    "Organization": _l("the organisations of your care team"),
    "Practitioner": _l("the staff of your care team"),
    "PractitionerRole": _l("the staff of your care team"),
    "Page": _l("your data"),
}
# Where "did" + "what" reads badly, the whole phrase.
PHRASES = {("update", "MessageReadMark"): _l("read messages about you"),
           ("create", "Message"): _l("wrote a message"),
           ("search", "Patient"): _l("saw you on a list of patients")}
VIA = {"api": _l("through an app or another system"),
       "fhir": _l("through another health IT system"),
       "cli": _l("with the administration tool"), "export": _l("in an export")}
WRITES = ("create", "update", "delete")


@bp.get("/me/access-log")
@login_required
def my_access_log():  # type: ignore[no-untyped-def]
    """Show the patient who has looked at their data, per person and day, newest first."""
    patient = own_patient()
    before = request.args.get("before", "")
    session = db()
    rows = audit.access_log(session, patient.id, before_id=int(before) if before.isdigit()
                            else None, limit=PAGE_SIZE + 1, without_live=True)
    rows, older = whole_days(rows, PAGE_SIZE, LOCAL)
    note(patient.id, "read", f"AuditEvent?patient={patient.id}")
    names = audit.organization_names(session, rows)
    groups = group_by_person_and_day(rows, LOCAL)
    return render_template("access_log.html", patient=patient, older=older,
                           days=days_in_words(groups, names, the_user().id))


def days_in_words(groups: list[PersonDay], names: dict[str, str],
                  me: int | None) -> list[dict[str, Any]]:
    """Return the groups under one heading per day, each group in words."""
    today = utcnow().astimezone(LOCAL).date()
    days: dict[date, dict[str, Any]] = {}
    for group in groups:
        day = days.setdefault(group.day, {"date": group.day.isoformat(),
                                          "title": day_words(group.day, today), "people": []})
        day["people"].append(group_words(group, names, me))
    for day in days.values():  # the patient's own looks after everyone else's
        day["people"].sort(key=lambda person: person["mine"])
    return list(days.values())


def day_words(day: date, today: date) -> str:
    """Return "Today", "Yesterday" or "Monday 30.11.2026"."""
    if day == today:
        return _("Today")
    if day == today - timedelta(days=1):
        return _("Yesterday")
    return f"{WEEKDAYS[day.weekday()]} {day:%d.%m.%Y}"


def group_words(group: PersonDay, names: dict[str, str], me: int | None) -> dict[str, Any]:
    """Return one person's day: who, where, what they did and when."""
    organization = names.get(group.organization_id, group.organization_id)
    mine = group.user_id is not None and group.user_id == me
    role = str(ROLES.get(group.role, group.role))
    # Only a command-line operator has neither a name nor an organisation.
    return {"who": _("You") if mine else group.name or organization or _("An administrator"),
            "mine": mine, "organization": "" if mine else organization,
            # Demo names already say "Nurse ..."; the role is added only where they do not.
            "role": "" if mine or role.lower() in group.name.lower() else role,
            "lines": [access_words(a) for a in group.accesses],
            "when": time_words(group.first_at, group.last_at)}


def access_words(access: Access) -> dict[str, Any]:
    """Return one line of a group: "looked at your measurements 3 times"."""
    what = str(RESOURCES.get(access.kind, RESOURCES["Page"]))
    if access.refused:
        text = (_("tried to change %(what)s but was not allowed", what=what)
                if access.action in WRITES else
                _("tried to see %(what)s but was not allowed", what=what))
    else:
        phrase = PHRASES.get((access.action, access.kind))
        text = str(phrase) if phrase else f"{ACTIONS.get(access.action, _('used'))} {what}"
    text = f"{text} {ngettext('once', '%(num)s times', access.count)}"
    if access.door in VIA:
        text = f"{text}, {VIA[access.door]}"
    return {"text": text, "refused": access.refused, "count": access.count}


def time_words(first: datetime, last: datetime) -> str:
    """Return "at 14:30", or "between 08:12 and 14:30"."""
    start, end = (f"{moment.astimezone(LOCAL):%H:%M}" for moment in (first, last))
    if start == end:
        return _("at %(time)s", time=end)
    return _("between %(first)s and %(last)s", first=start, last=end)
