"""Administration: organisations, users and patients (used by `telekol org|user|patient`)."""

from __future__ import annotations

import re
import secrets
import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func
from sqlmodel import Session, col, select
from telekol.fhir.cpr import InvalidCPR, validate_cpr
from telekol.server.accounts import password_policy
from telekol.server.accounts.login import hash_password
from telekol.server.care import plan as care_plan
from telekol.server.care.episodes import record_consent, start_episode
from telekol.server.care.telephone import InvalidPhone, normalise
from telekol.server.db import utcnow
from telekol.server.models import CareTeamMember, Organization, Patient, PatientRuleSettings, User

ORG_KINDS = ("hospital", "municipality", "gp")
ROLES = ("nurse", "doctor", "gp", "secretary", "admin", "patient")
CLINICAL_ROLES = ("nurse", "doctor", "gp", "secretary")
TEAM_ROLES = ("monitoring", "treatment", "monitoring+treatment", "specialist", "member")
DEFAULT_TEAM_ROLE = {"municipality": "monitoring", "gp": "treatment", "hospital": "specialist"}
# NIST SP 800-63B 5.1.1.2 (server/accounts/password_policy.py): length, common lists, user's own
# data.
MIN_PASSWORD_LENGTH = password_policy.MIN_LENGTH
MAX_PASSWORD_LENGTH = password_policy.MAX_LENGTH
_USERNAME = re.compile(r"\A[a-z0-9][a-z0-9._-]{1,63}\Z")
_ORG_ID = re.compile(r"\A[a-z0-9][a-z0-9._-]{0,63}\Z")
_SOR = re.compile(r"\A[0-9]{6,20}\Z")


def N_(text: str) -> str:
    """Mark English text for the translation catalogue; the pages translate it."""
    return text


class AdminError(ValueError):
    """Bad input to an administration command; the message says what to fix.

    `template` is English with %(name)s placeholders filled from `params`: the CLI prints
    `str(error)`, a page shows `gettext(error.template, **error.params)`.
    """

    def __init__(self, template: str, **params: object) -> None:
        self.template, self.params = template, params
        super().__init__(template % params if params else template)


@dataclass(frozen=True)
class NewUser:
    """A created user, with the generated password when one was generated."""

    username: str
    generated_password: str | None
    patient_id: str | None = None


def add_organization(session: Session, org_id: str, name: str, kind: str,
                     sor_code: str | None = None, phone: str | None = None) -> Organization:
    """Create an organisation; `phone` is the number its patients call."""
    if not _ORG_ID.match(org_id):
        raise AdminError(N_("an organisation id is 1-64 of a-z, 0-9, '.', '_', '-'"))
    if kind not in ORG_KINDS:
        raise AdminError(N_("kind must be one of %(kinds)s"), kinds=", ".join(ORG_KINDS))
    if not name.strip() or len(name) > 200:
        raise AdminError(N_("a name is 1-200 characters"))
    if sor_code is not None and not _SOR.match(sor_code):
        raise AdminError(N_("a SOR code is 6-20 digits"))
    number = phone_number(phone)
    if session.get(Organization, org_id) is not None:
        raise AdminError(N_("organisation %(id)s already exists"), id=org_id)
    organization = Organization(id=org_id, name=name.strip(), kind=kind, sor_code=sor_code,
                                phone=number)
    session.add(organization)
    session.flush()
    return organization


def set_organization_phone(session: Session, org_id: str, phone: str | None) -> Organization:
    """Set (or with None or "" remove) the number an organisation's patients call."""
    organization = session.get(Organization, org_id)
    if organization is None:
        raise AdminError(N_("no organisation %(id)s"), id=org_id)
    organization.phone = phone_number(phone)
    session.add(organization)
    session.flush()
    return organization


def phone_number(text: str | None) -> str | None:
    """Return a phone number as stored (E.164), None for none; refuse one that is not."""
    if text is None or not text.strip():
        return None
    try:
        return normalise(text)
    except InvalidPhone:
        raise AdminError(N_("a phone number is 8 digits, or + and the country code first")
                         ) from None


def add_user(session: Session, username: str, display_name: str, role: str,
             organization_id: str | None = None, patient_id: str | None = None,
             password: str | None = None, *, patient_cpr: str | None = None) -> NewUser:
    """Create a user; generate a password unless one is given.

    A patient user is linked by `patient_id` or by `patient_cpr`. The CPR number is looked
    up last, after every other check, so a refused request answers the same whether or not
    the number is enrolled (an administrator sees no clinical data).
    """
    if not _USERNAME.match(username):
        raise AdminError(N_("a username is 2-64 of a-z, 0-9, '.', '_', '-', starting with a "
                            "letter or digit"))
    if role not in ROLES:
        raise AdminError(N_("role must be one of %(roles)s"), roles=", ".join(ROLES))
    if not display_name.strip() or len(display_name) > 200:
        raise AdminError(N_("a name is 1-200 characters"))
    if role in CLINICAL_ROLES and organization_id is None:
        raise AdminError("a %(role)s needs --org", role=role)  # the pages ask first
    linked = patient_id is not None or patient_cpr is not None
    if role == "patient" and not linked:
        raise AdminError("a patient user needs --patient")
    if role != "patient" and linked:
        raise AdminError("only a patient user has --patient")
    if organization_id is not None and session.get(Organization, organization_id) is None:
        raise AdminError(N_("no organisation %(id)s"), id=organization_id)
    cpr = _cpr_digits(patient_cpr) if patient_cpr is not None else None
    if patient_id is not None and session.get(Patient, patient_id) is None:
        raise AdminError(N_("no patient %(id)s"), id=patient_id)
    if _find(session, username) is not None:
        raise AdminError(N_("user %(username)s already exists"), username=username)
    generated = None
    if password is None:
        password = generated = secrets.token_urlsafe(15)
    check_password(password, username, cpr or _cpr_of(session, patient_id))
    if cpr is not None:
        patient_id = patient_for_cpr(session, cpr)
    session.add(User(username=username, display_name=display_name.strip(), role=role,
                     organization_id=organization_id, patient_id=patient_id,
                     password_hash=hash_password(password)))
    session.flush()
    return NewUser(username, generated, patient_id)


def check_password(password: str, username: str | None = None, cpr: str | None = None) -> None:
    """Refuse a password NIST SP 800-63B would: short, common, the username or the CPR."""
    found = password_policy.problem(password, username, cpr)
    if found is not None:
        raise AdminError(found[0], **found[1])


def _cpr_of(session: Session, patient_id: str | None) -> str | None:
    patient = session.get(Patient, patient_id) if patient_id else None
    return patient.cpr if patient else None


def set_password(session: Session, username: str, password: str) -> None:
    """Set a new password; this ends the user's sessions and tokens and lifts a lock-out."""
    user = _user(session, username)
    check_password(password, username, _cpr_of(session, user.patient_id))
    user.password_hash = hash_password(password)
    user.token_version += 1
    user.failed_logins, user.locked_until = 0, None
    session.add(user)


def deactivate(session: Session, username: str, *, acting: str | None = None) -> None:
    """Stop a user logging in; their sessions and tokens stop working at once.

    `acting` is the administrator doing it, who may not lock themselves out.
    """
    if acting is not None and acting == username:
        raise AdminError(N_("you cannot deactivate yourself"))
    user = _user(session, username)
    user.active = False
    user.token_version += 1
    session.add(user)


def reactivate(session: Session, username: str) -> None:
    """Let a deactivated user log in again (with their password; old sessions stay ended)."""
    user = _user(session, username)
    user.active = True
    user.failed_logins, user.locked_until = 0, None
    session.add(user)


def unlock(session: Session, username: str) -> None:
    """Lift a lock-out and forget earlier failed logins."""
    user = _user(session, username)
    user.failed_logins, user.locked_until = 0, None
    session.add(user)


def add_patient(session: Session, cpr: str, given: str, family: str,
                team: list[str], *, custodian: str | None = None,
                sharing_consent: bool = True, hypercapnic: bool = False) -> Patient:
    """Create a patient, their care team and their telemonitoring episode.

    `team` holds `ORG` or `ORG:ROLE` entries; ROLE is monitoring, treatment,
    monitoring+treatment, specialist or member (default from the organisation's kind).
    Exactly one organisation monitors and one treats; the data custodian defaults to the
    monitoring organisation. Enrolment records participation consent, and the sharing
    consent as given (without it only the custodian sees the data). The care plan starts
    from the COPD programme's cited default limits and schedules (server/care/programmes/); a
    patient marked `hypercapnic` (NEWS2 SpO2 Scale 2) gets the programme's hypercapnic limits.
    """
    try:
        digits = validate_cpr(cpr)
    except InvalidCPR as error:
        raise AdminError(str(error)) from None
    if not given.strip() or not family.strip():
        raise AdminError("given and family names must not be empty")
    if not team:
        raise AdminError("a patient needs at least one --team organisation")
    members: dict[str, str] = {}
    responsible: dict[str, list[str]] = {"monitoring": [], "treatment": []}
    for entry in team:
        org_id, _, role = entry.partition(":")
        organization = session.get(Organization, org_id)
        if organization is None:
            raise AdminError(f"no organisation {org_id}")
        role = role or DEFAULT_TEAM_ROLE[organization.kind]
        if role not in TEAM_ROLES:
            raise AdminError(f"a care-team role is one of {', '.join(TEAM_ROLES)}")
        for part in role.split("+"):
            if part in responsible:
                responsible[part].append(org_id)
        members[org_id] = role.split("+")[0]
    for part, orgs in responsible.items():
        if len(orgs) != 1:
            raise AdminError(f"exactly one care-team organisation must hold {part} "
                             f"responsibility (ORG:{part}); found {len(orgs)}")
    if custodian is not None and custodian not in members:
        raise AdminError("the data custodian must be on the care team")
    if session.exec(select(Patient).where(Patient.cpr == digits)).first() is not None:
        raise AdminError("a patient with this CPR number already exists")
    patient = Patient(id=str(uuid.uuid4()), cpr=digits, given=given.strip(),
                      family=family.strip())
    session.add(patient)
    session.flush()
    for org_id, role in members.items():
        session.add(CareTeamMember(patient_id=patient.id, organization_id=org_id, role=role))
    session.flush()
    note = "Recorded at enrolment (telekol patient add)"
    record_consent(session, patient.id, "participation", True, note=note)
    record_consent(session, patient.id, "sharing", sharing_consent, note=note)
    monitoring, treatment = responsible["monitoring"][0], responsible["treatment"][0]
    episode = start_episode(session, patient.id, custodian=custodian or monitoring,
                            monitoring=monitoring, treatment=treatment)
    if hypercapnic:
        session.add(PatientRuleSettings(patient_id=patient.id, hypercapnic=True,
                                        set_by="enrolment", source="telekol patient add"))
        session.flush()
    care_plan.start_from_programme(session, episode)  # the programme's cited defaults
    return patient


def list_users(session: Session) -> list[dict[str, Any]]:
    """Return every user without secrets (no password hash)."""
    users = session.exec(select(User).order_by(User.username)).all()
    now = utcnow()
    return [{"username": u.username, "name": u.display_name, "role": u.role,
             "organization": u.organization_id, "patient": u.patient_id, "active": u.active,
             "locked_until": (u.locked_until.isoformat()
                              if u.locked_until and u.locked_until > now else None),
             "failed_logins": u.failed_logins} for u in users]


def list_organizations(session: Session) -> list[dict[str, Any]]:
    """Return every organisation with its number of users."""
    counts = dict(session.exec(select(User.organization_id, func.count()).where(
        col(User.organization_id).is_not(None)).group_by(col(User.organization_id))).all())
    organizations = session.exec(select(Organization).order_by(Organization.kind,
                                                                Organization.id)).all()
    return [{"id": o.id, "name": o.name, "kind": o.kind, "sor_code": o.sor_code,
             "phone": o.phone, "users": counts.get(o.id, 0)} for o in organizations]


def _cpr_digits(cpr: str) -> str:
    try:
        return validate_cpr(cpr.strip())
    except InvalidCPR:
        raise AdminError(N_("a CPR number is 10 digits, written DDMMYYSSSS or DDMMYY-SSSS")
                         ) from None


def patient_for_cpr(session: Session, cpr: str) -> str:
    """Return the id of the patient with this CPR number (for linking a patient user)."""
    digits = _cpr_digits(cpr)
    patient_id = session.exec(select(Patient.id).where(Patient.cpr == digits)).first()
    if patient_id is None:
        raise AdminError(N_("no patient has this CPR number"))
    return patient_id


def _find(session: Session, username: str) -> User | None:
    return session.exec(select(User).where(User.username == username)).first()


def _user(session: Session, username: str) -> User:
    user = _find(session, username)
    if user is None:
        raise AdminError(N_("no user %(username)s"), username=username)
    return user
