"""The demo fixture (CONTRACT section 6): organisations, users, patients, devices, limits.

Idempotent: running it again changes nothing that exists. Demo credentials are fixed
so the simulator and the README can use them; never load this into production.
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlmodel import Session, select
from telekol.server.accounts.devices import provision_device
from telekol.server.accounts.login import hash_password
from telekol.server.care.access import team_organizations
from telekol.server.care.episodes import latest_episode, record_consent, start_episode
from telekol.server.care.messages import seed_demo_messages
from telekol.server.demo.care_plans import seed_demo_care_plans
from telekol.server.models import (
    CareTeamMember,
    Device,
    EscalationPolicy,
    Organization,
    Patient,
    PatientRuleSettings,
    User,
)

DEMO_PASSWORD = "telekol-demo"
_NS = uuid.UUID("6f1f1d1e-7e1a-4c55-9d0e-7e1e0c0b1a01")

# id, name, kind, SOR code, phone. The phone numbers are made up for the demo (their last
# digits repeat the SOR code's): never print them as a real number to call.
ORGANIZATIONS = [
    ("hosp-lung", "Lungemedicinsk Afdeling, Hospital Nord", "hospital", "900000000000011",
     "+4572000011"),
    ("muni-aalby", "Hjemmesygeplejen, Aalby Kommune", "municipality", "900000000000021",
     "+4572000021"),
    ("muni-boestrup", "Hjemmesygeplejen, Bøstrup Kommune", "municipality", "900000000000022",
     "+4572000022"),
    ("gp-torvet", "Lægerne ved Torvet", "gp", "900000000000031", "+4586000031"),
    ("gp-skovvej", "Lægehuset Skovvej", "gp", "900000000000032", "+4586000032"),
]
USERS = [  # username, display name, role, organisation
    ("doctor.hospital", "Overlæge Hanne Lund", "doctor", "hosp-lung"),
    ("nurse.aalby", "Sygeplejerske Mette Holm", "nurse", "muni-aalby"),
    ("nurse.boestrup", "Sygeplejerske Lars Bro", "nurse", "muni-boestrup"),
    ("gp.torvet", "Praktiserende læge Ole Berg", "gp", "gp-torvet"),
    ("gp.skovvej", "Praktiserende læge Sofie Dahl", "gp", "gp-skovvej"),
    ("admin", "Administrator", "admin", None),
]
PATIENTS = [  # CPR (test numbers ending 999x; last digit odd = male), given, family, team
    ("0101419996", "Karen Test", "Jensen", ["muni-aalby", "gp-torvet", "hosp-lung"]),
    ("1503459995", "Poul Test", "Nielsen", ["muni-aalby", "gp-torvet"]),
    ("2207389998", "Inge Test", "Hansen", ["muni-boestrup", "gp-skovvej"]),
    ("0911509997", "Jørgen Test", "Pedersen", ["muni-boestrup", "gp-skovvej", "hosp-lung"]),
    ("3004429992", "Birthe Test", "Andersen", ["muni-aalby", "gp-skovvej"]),
    ("1812479991", "Erik Test", "Christensen", ["muni-boestrup", "gp-torvet"]),
    ("2502399993", "Svend Test", "Mortensen", ["muni-aalby", "gp-torvet", "hosp-lung"]),
    ("1406449990", "Else Test", "Olsen", ["muni-boestrup", "gp-skovvej"]),
]
TEAM_ROLE = {"municipality": "monitoring", "gp": "treatment", "hospital": "specialist"}
# Responsibility patterns (issue 4; Region Sjælland's split, docs/clinical.md): by default the
# municipality monitors and keeps the data, and the GP treats (sets thresholds). Svend is one of
# the most severe: the hospital monitors, treats and keeps the data. Else has not consented to
# sharing across sectors: only Bøstrup (the data custodian) sees her data.
HOSPITAL_PATTERN = {"2502399993"}
NO_SHARING_CONSENT = {"1406449990"}
CONSENT_NOTE = "Demo consent recorded at enrolment (demo data)"
# CONTRACT section 6: for every demo patient SpO2 below 88 % is red and 88-91 % yellow. The
# limits come from each patient's care plan version 1, made from the COPD programme's
# defaults (server/care/programmes/copd.json, server/demo/care_plans.py), which say exactly that.
# Demo rule settings (server/alerts/rules, docs/alerting.md): Inge is marked hypercapnic (NEWS2 SpO2
# Scale 2, target 88-92 %) and her CAT alert needs a rise of 3 instead of the MCID of 2.
RULE_SETTINGS: dict[str, tuple[bool, dict[str, float]]] = {
    "2207389998": (True, {"cat_mcid": 3}),
}
RULE_SETTINGS_SOURCE = "Demo rule settings set by the GP (demo data, not clinical advice)"
# Demo escalation (server/alerts/escalation.py): so that `make demo` shows an unacknowledged red
# alert
# move to the hospital within minutes, Bøstrup's home nurses get a 3-minute limit; their
# patients with the hospital on the team (Jørgen Test Pedersen) escalate after 3 minutes.
# Every other patient keeps the global default (60 minutes). Demo data, not clinical advice.
DEMO_ESCALATION: dict[str, Any] = {
    "id": "demo-muni-boestrup", "organization_id": "muni-boestrup",
    "chain": ["@monitoring", "@hospital"], "red_ack_minutes": 3,
    "source": "Demo escalation policy (3 minutes so the demo shows escalation to the "
              "hospital); demo data, not clinical advice"}


def seed_demo(session: Session, patients: int = 8) -> dict[str, Any]:
    """Load the demo fixture (idempotent) and return it as the contract's JSON document."""
    kinds = {org_id: kind for org_id, _, kind, _, _ in ORGANIZATIONS}
    _ensure_organizations(session)
    fixture: dict[str, Any] = {"organizations": [
        {"id": o, "name": n, "kind": k} for o, n, k, _, _ in ORGANIZATIONS],
        "users": [], "patients": [], "devices": []}
    gp_names = {org: name for _, name, role, org in USERS if role == "gp"}
    for index, (cpr, given, family, team) in enumerate(_patient_rows(patients), start=1):
        patient = _ensure_patient(session, cpr, given, family)
        for org_id in team:
            if session.get(CareTeamMember, (patient.id, org_id)) is None:
                session.add(CareTeamMember(patient_id=patient.id, organization_id=org_id,
                                           role=TEAM_ROLE[kinds[org_id]]))
        gp = next(org for org in team if kinds[org] == "gp")
        _ensure_episode(session, patient.id, cpr, team, kinds)
        if cpr in RULE_SETTINGS and session.get(PatientRuleSettings, patient.id) is None:
            hypercapnic, overrides = RULE_SETTINGS[cpr]
            session.add(PatientRuleSettings(
                patient_id=patient.id, hypercapnic=hypercapnic, overrides=overrides,
                set_by=gp_names[gp], source=RULE_SETTINGS_SOURCE))
        device_id = f"hub-{index:04d}"
        password = demo_device_password(device_id)
        if session.get(Device, device_id) is None:
            provision_device(session, patient_id=patient.id, device_id=device_id,
                             password=password, kind="hub", model="TeleKOL demo hub")
        # CONTRACT section 6 reads `care_team` as the organisations that see the patient;
        # without sharing consent that is the data custodian alone, and `members` keeps
        # the whole team (docs/care-team.md).
        sharing = cpr not in NO_SHARING_CONSENT
        seeing = [org for org in team
                  if org in team_organizations(session, [patient.id]).get(patient.id, [])]
        fixture["patients"].append({"id": patient.id, "cpr": cpr, "name": f"{given} {family}",
                                    "care_team": seeing, "members": team,
                                    "sharing_consent": sharing})
        fixture["devices"].append({"device_id": device_id, "mqtt_username": device_id,
                                   "mqtt_password": password, "patient": patient.id})
    if session.get(EscalationPolicy, DEMO_ESCALATION["id"]) is None:
        session.add(EscalationPolicy(**DEMO_ESCALATION))
    first = fixture["patients"][0]["id"]
    user_rows = [*USERS, ("patient.karen", "Karen Test Jensen", "patient", None)]
    for username, display, role, org in user_rows:
        patient_id = first if role == "patient" else None
        if session.exec(select(User).where(User.username == username)).first() is None:
            session.add(User(username=username, password_hash=hash_password(DEMO_PASSWORD),
                             display_name=display, role=role, organization_id=org,
                             patient_id=patient_id))
        fixture["users"].append({"username": username, "password": DEMO_PASSWORD,
                                 "organization": org, "role": role, "patient": patient_id})
    session.flush()
    seed_demo_messages(session)
    seed_demo_care_plans(session)
    return fixture


def demo_device_password(device_id: str) -> str:
    """Return the fixed password of a demo hub (demo data only)."""
    return f"demo-{device_id}"


def _ensure_organizations(session: Session) -> None:
    # A database seeded before organisations had phone numbers gets the demo numbers too.
    for org_id, name, kind, sor, phone in ORGANIZATIONS:
        found = session.get(Organization, org_id)
        if found is None:
            session.add(Organization(id=org_id, name=name, kind=kind, sor_code=sor,
                                     phone=phone))
        elif found.phone is None:
            found.phone = phone
            session.add(found)


def _patient_rows(count: int) -> list[tuple[str, str, str, list[str]]]:
    rows = list(PATIENTS[:count])
    teams = [p[3] for p in PATIENTS]
    index = len(rows)
    while len(rows) < count:
        index += 1
        cpr = f"{index % 28 + 1:02d}{index % 12 + 1:02d}{40 + index % 20:02d}9{index % 1000:03d}"
        rows.append((cpr, f"Demo{index} Test", "Borger", teams[index % len(teams)]))
    return rows


def _ensure_patient(session: Session, cpr: str, given: str, family: str) -> Patient:
    patient = session.exec(select(Patient).where(Patient.cpr == cpr)).first()
    if patient is None:
        patient = Patient(id=str(uuid.uuid5(_NS, cpr)), cpr=cpr, given=given, family=family)
        session.add(patient)
        session.flush()
    return patient


def _ensure_episode(session: Session, patient_id: str, cpr: str, team: list[str],
                    kinds: dict[str, str]) -> None:
    if latest_episode(session, patient_id) is not None:
        return
    by_kind = {kinds[org]: org for org in team}
    if cpr in HOSPITAL_PATTERN:
        custodian = monitoring = treatment = by_kind["hospital"]
    else:
        custodian = monitoring = by_kind["municipality"]
        treatment = by_kind["gp"]
    record_consent(session, patient_id, "participation", True, note=CONSENT_NOTE)
    record_consent(session, patient_id, "sharing", cpr not in NO_SHARING_CONSENT,
                   note=CONSENT_NOTE)
    start_episode(session, patient_id, custodian=custodian, monitoring=monitoring,
                  treatment=treatment)
