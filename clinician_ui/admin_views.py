"""Administration pages: organisations, users and the audit log, for administrators only.

Everyone else gets 404, exactly as if the pages did not exist. Administrators see no
clinical data here: a patient user is linked by CPR number, resolved on the server.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime, timedelta
from functools import wraps
from typing import Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from flask import abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import login_required
from sqlmodel import select
from telekol.clinician_ui.audit_words import ACTIONS, DOORS, choices, record_words
from telekol.clinician_ui.blueprint import bp
from telekol.server.accounts import admin
from telekol.server.models import User
from telekol.server.web.auditing import note
from telekol.server.web.auth import the_user
from telekol.server.web.context import db, services

LOCAL = ZoneInfo("Europe/Copenhagen")
AUDIT_PAGE = 50
AUDIT_FILTERS = ("patient", "user", "org", "action", "door", "from", "to")
USER_ACTIONS: dict[str, Callable[..., None]] = {
    "deactivate": admin.deactivate, "reactivate": admin.reactivate, "unlock": admin.unlock}


def admin_only(view: Callable[..., Any]) -> Callable[..., Any]:
    """Let only administrators in; anyone else gets 404 (as if absent)."""
    @wraps(view)
    @login_required
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        if the_user().role != "admin":
            abort(404)
        return view(*args, **kwargs)
    return wrapped


def message(error: admin.AdminError) -> str:
    """Return an administration error in the page's language."""
    return _(error.template, **error.params)  # type: ignore[arg-type]


@bp.get("/admin/organizations")
@admin_only
def admin_organizations():  # type: ignore[no-untyped-def]
    """List the organisations and offer a form to add one."""
    return _organizations_page()


@bp.post("/admin/organizations")
@admin_only
def admin_organizations_add():  # type: ignore[no-untyped-def]
    """Add an organisation from the form."""
    form = request.form
    org_id = form.get("id", "").strip()
    note(None, "create", f"Organization/{org_id}")  # a refused attempt is recorded as failed
    try:
        admin.add_organization(db(), org_id, form.get("name", ""), form.get("kind", ""),
                               form.get("sor_code", "").strip() or None,
                               form.get("phone", "").strip() or None)
    except admin.AdminError as error:
        db().rollback()
        return _organizations_page(error=message(error)), 400
    db().commit()
    flash(_("Organisation %(id)s added.", id=org_id))
    return redirect(url_for("ui.admin_organizations"), 303)


@bp.post("/admin/organizations/<org_id>/phone")
@admin_only
def admin_organization_phone(org_id: str):  # type: ignore[no-untyped-def]
    """Set or remove the phone number an organisation's patients call."""
    note(None, "update", f"Organization/{org_id}", detail="phone")
    try:
        org = admin.set_organization_phone(db(), org_id, request.form.get("phone"))
    except admin.AdminError as error:
        db().rollback()
        return _organizations_page(error=f"{org_id}: {message(error)}", form={}), 400
    db().commit()
    flash(_("Phone number of %(id)s saved.", id=org_id) if org.phone else
          _("Phone number of %(id)s removed.", id=org_id))
    return redirect(url_for("ui.admin_organizations"), 303)


def _organizations_page(error: str | None = None, form: Any = None) -> str:
    form = request.form if form is None else form  # the add form keeps what was typed
    return render_template("admin_organizations.html", error=error, form=form,
                           organizations=admin.list_organizations(db()), kinds=admin.ORG_KINDS)


@bp.get("/admin/users")
@admin_only
def admin_users():  # type: ignore[no-untyped-def]
    """List the users (never a password hash) and offer a form to add one."""
    return _users_page()


@bp.post("/admin/users")
@admin_only
def admin_users_add():  # type: ignore[no-untyped-def]
    """Add a user from the form; a patient user is found by their CPR number."""
    form = request.form
    username, role = form.get("username", "").strip(), form.get("role", "")
    organization = form.get("organization", "").strip() or None
    try:
        made = admin.add_user(db(), username, form.get("name", ""), role,
                              organization_id=organization if role in admin.CLINICAL_ROLES
                              else None, password=form.get("password", ""),
                              patient_cpr=_cpr_of_new_user(role, organization,
                                                           form.get("cpr", "")))
    except admin.AdminError as error:
        db().rollback()
        note(None, "create", f"User/{username}")  # no patient: the answer must not tell
        return _users_page(error=message(error)), 400
    note(made.patient_id, "create", f"User/{username}")
    db().commit()
    flash(_("User %(username)s added.", username=username))
    return redirect(url_for("ui.admin_users"), 303)


def _cpr_of_new_user(role: str, organization: str | None, cpr: str) -> str | None:
    # The form words these checks itself: the service's messages name CLI options.
    if role in admin.CLINICAL_ROLES and organization is None:
        raise admin.AdminError(admin.N_("A nurse, doctor, GP or secretary needs an "
                                        "organisation."))
    if role != "patient":
        return None
    if not cpr.strip():
        raise admin.AdminError(admin.N_("A patient user needs the patient's CPR number."))
    return cpr  # looked up last, by admin.add_user


@bp.post("/admin/users/<username>/<action>")
@admin_only
def admin_user_action(username: str, action: str):  # type: ignore[no-untyped-def]
    """Deactivate, reactivate or unlock a user."""
    act = USER_ACTIONS.get(action)
    if act is None:
        abort(404)
    note(None, "update", f"User/{username}", detail=action)
    try:
        if action == "deactivate":
            admin.deactivate(db(), username, acting=the_user().username)
        else:
            act(db(), username)
    except admin.AdminError as error:
        db().rollback()
        return _users_page(error=message(error)), 400
    db().commit()
    done = {"deactivate": _("User %(username)s deactivated.", username=username),
            "reactivate": _("User %(username)s reactivated.", username=username),
            "unlock": _("User %(username)s unlocked.", username=username)}
    flash(done[action])
    return redirect(url_for("ui.admin_users"), 303)


@bp.post("/admin/users/<username>/password")
@admin_only
def admin_user_password(username: str):  # type: ignore[no-untyped-def]
    """Set a user's password; this ends their sessions and tokens."""
    note(None, "update", f"User/{username}", detail="password")
    try:
        admin.set_password(db(), username, request.form.get("password", ""))
    except admin.AdminError as error:
        db().rollback()
        return _users_page(error=message(error)), 400
    db().commit()
    flash(_("New password set for %(username)s; their sessions have ended.",
            username=username))
    return redirect(url_for("ui.admin_users"), 303)


def _users_page(error: str | None = None) -> str:
    users = admin.list_users(db())
    for user in users:
        user["locked_local"] = _local(user["locked_until"])
    return render_template("admin_users.html", error=error, form=request.form, users=users,
                           organizations=admin.list_organizations(db()), roles=admin.ROLES,
                           me=the_user().username)


@bp.get("/admin/audit")
@admin_only
def admin_audit():  # type: ignore[no-untyped-def]
    """Search the audit log, newest first, and show whether its chain is intact."""
    from telekol.server.audit import (
        log as audit,  # written alongside; imported here to keep the app light
    )
    from telekol.server.audit.anchor import verify_anchored

    filters = {k: request.args.get(k, "").strip() for k in AUDIT_FILTERS}
    before = request.args.get("before", "")
    try:
        criteria = _audit_criteria(filters)
    except ValueError as problem:
        return _audit_page(filters, error=str(problem)), 400
    records = audit.search(db(), **criteria, before_id=int(before) if before.isdigit() else None,
                           limit=AUDIT_PAGE + 1)
    shown = {k: v for k, v in filters.items() if v}
    note(filters["patient"] or None, "search", f"AuditEvent?{urlencode(shown)}"[:300])
    older = None
    if len(records) > AUDIT_PAGE:
        records = records[:AUDIT_PAGE]
        older = f"{url_for('ui.admin_audit')}?{urlencode({**shown, 'before': records[-1].id})}"
    # Walking the whole chain reads every record: only when asked, not on every search.
    chain = verify_anchored(db(), services().settings) if request.args.get("verify") == "1" \
        else None
    return _audit_page(filters, records=records, older=older, chain=chain)


def _audit_criteria(filters: dict[str, str]) -> dict[str, Any]:
    user_id = None
    if filters["user"]:
        user_id = db().exec(select(User.id).where(User.username == filters["user"])).first()
        if user_id is None:
            raise ValueError(_("No user %(username)s.", username=filters["user"]))
    return {"patient_id": filters["patient"] or None, "user_id": user_id,
            "organization_id": filters["org"] or None, "action": filters["action"] or None,
            "door": filters["door"] or None, "since": _day_start(filters["from"]),
            "until": _day_start(filters["to"], next_day=True)}


def _day_start(text: str, *, next_day: bool = False) -> datetime | None:
    # A day in the form is a Danish calendar day; "to" includes the whole day.
    if not text:
        return None
    try:
        day = date.fromisoformat(text)
    except ValueError:
        raise ValueError(_("A date is written YYYY-MM-DD.")) from None
    day += timedelta(days=1) if next_day else timedelta(0)
    return datetime(day.year, day.month, day.day, tzinfo=LOCAL)


AUDIT_ACTIONS = ("read", "search", "create", "update", "delete", "export", "push", "subscribe")
AUDIT_DOORS = ("ui", "api", "fhir", "live", "cli", "export")


def _audit_page(filters: dict[str, str], **found: Any) -> str:
    found.setdefault("records", [])
    return render_template("admin_audit.html", filters=filters, local=_local,
                           words=record_words, actions=choices(ACTIONS, AUDIT_ACTIONS),
                           doors=choices(DOORS, AUDIT_DOORS), **found)


def local_time(moment: datetime | str | None) -> str:
    """Return an instant as Danish local time for the administration pages."""
    return _local(moment)


def _local(moment: datetime | str | None) -> str:
    if moment is None:
        return ""
    if isinstance(moment, str):
        moment = datetime.fromisoformat(moment)
    return moment.astimezone(LOCAL).strftime("%Y-%m-%d %H:%M:%S")
