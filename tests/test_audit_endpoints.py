"""Every endpoint that touches patient data leaves an audit record.

Every rule of the app's URL map is classified here, in PATIENT_DATA (with a request for a demo
patient the user may see) or in NOT_PATIENT_DATA (with the reason). A rule in neither fails
`test_every_endpoint_is_classified`, so each new endpoint forces a decision. For each
PATIENT_DATA entry the request is made and a new record must name the patient, the door and
success.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from flask import Flask
from sqlmodel import Session, col, select
from telekol.server.config import load_settings
from telekol.server.db import make_engine
from telekol.server.demo.seed import DEMO_PASSWORD
from telekol.server.models import (
    Alert,
    AuditRecord,
    CarePlanVersion,
    Consent,
    Device,
    Episode,
    Handover,
    InboxItem,
    MonitoringPause,
    Observation,
    StoredResource,
    ThresholdProposal,
)
from telekol.server.web import create_app

from tests.conftest import BACKENDS

LOCAL = ZoneInfo("Europe/Copenhagen")
CAT = dict.fromkeys(("cough", "phlegm", "chest_tightness", "breathlessness", "activities",
                     "confidence", "sleep", "energy"), 1)


@dataclass(frozen=True)
class Call:
    """A request by a demo user; `{name}` in the path and bodies is filled from `World.ids`."""

    user: str
    method: str
    path: str
    patient: str = "Karen"  # first name of the patient the record must name
    json: dict[str, Any] | Callable[[dict[str, Any]], dict[str, Any]] | None = None
    form: dict[str, str] | None = None  # a page's form: fields from the page, these override
    form_page: str | None = None  # the page holding the form (default: the path, GET)
    before: tuple[Call, ...] = field(default=())


def soon(days: int, hours: int = 0) -> str:
    return (datetime.now(UTC) + timedelta(days=days, hours=hours)).isoformat()


def local_input(days: int) -> str:
    """A datetime-local field's value, `days` from now, in Danish time."""
    moment = datetime.now(LOCAL) + timedelta(days=days)
    return moment.strftime("%Y-%m-%dT%H:%M")


def hand_over(user: str, patient: str, responsibility: str, to: str) -> Call:
    return Call(user, "POST", f"/api/patients/{{{patient.lower()}}}/handovers", patient,
                json={"responsibility": responsibility, "to_organization": to,
                      "reason": "audit test"})


def propose(user: str, patient: str) -> Call:
    return Call(user, "POST", f"/api/patients/{{{patient.lower()}}}/threshold-proposals",
                patient, json={"measurement": "spo2", "reason": "audit test",
                               "proposed": {"red_low": 87, "yellow_low": 91}})


def pause(user: str, patient: str, days: int) -> Call:
    return Call(user, "POST", f"/api/patients/{{{patient.lower()}}}/pauses", patient,
                json={"starts_at": soon(days), "ends_at": soon(days + 2),
                      "reason": "holiday"})


def plan_change(ids: dict[str, Any]) -> dict[str, Any]:
    return {"base_version": ids["plan_version"],
            "content": {**ids["plan_content"], "notes": "Changed in the audit test."}}


K = "{karen}"
PATIENT_DATA: dict[str, Call] = {
    # the work list (pages)
    "GET /": Call("nurse.aalby", "GET", "/"),
    "GET /worklist/rows": Call("nurse.aalby", "GET", f"/worklist/rows?ids={K}"),
    "POST /patients/<patient_id>/alerts/acknowledge": Call(
        "nurse.boestrup", "POST", "/patients/{erik}/alerts/acknowledge", "Erik",
        form={"note": "ok"}, form_page="/worklist/rows?ids={erik}"),
    "POST /alerts/<int:alert_id>/<action>": Call(
        "nurse.aalby", "POST", "/alerts/{alert_karen}/acknowledge", form={"note": "ok"},
        form_page=f"/worklist/rows?ids={K}"),
    # /api
    "GET /api/alerts": Call("nurse.aalby", "GET", "/api/alerts"),
    "POST /api/alerts/<int:alert_id>/acknowledge": Call(
        "nurse.aalby", "POST", "/api/alerts/{alert_karen}/acknowledge", json={}),
    "POST /api/alerts/<int:alert_id>/snooze": Call(
        "nurse.aalby", "POST", "/api/alerts/{alert_poul}/snooze", "Poul",
        json={"minutes": 30, "reason": "called the patient"}),
    "POST /api/alerts/<int:alert_id>/resolve": Call(
        "nurse.aalby", "POST", "/api/alerts/{alert_birthe}/resolve", "Birthe", json={}),
    "GET /api/alerts/<int:alert_id>/history": Call(
        "nurse.aalby", "GET", "/api/alerts/{alert_karen}/history"),
    "GET /api/inbox": Call("gp.torvet", "GET", "/api/inbox"),
    "POST /api/inbox/<int:item_id>/read": Call(
        "gp.torvet", "POST", "/api/inbox/{inbox_karen}/read", json={}),
    "GET /api/patients": Call("nurse.aalby", "GET", "/api/patients"),
    "POST /api/patients/<patient_id>/alerts/acknowledge": Call(
        "nurse.aalby", "POST", f"/api/patients/{K}/alerts/acknowledge", json={"note": "ok"}),
    "GET /api/quarantine": Call("admin", "GET", "/api/quarantine"),
    "GET /admin/quarantine": Call("admin", "GET", "/admin/quarantine"),
    "GET /api/patients/<patient_id>/observations": Call(
        "nurse.aalby", "GET", f"/api/patients/{K}/observations?code=spo2"),
    "GET /api/me/observations": Call("patient.karen", "GET", "/api/me/observations?code=spo2"),
    "GET /api/patients/<patient_id>/care-plan": Call(
        "nurse.aalby", "GET", f"/api/patients/{K}/care-plan"),
    "PUT /api/patients/<patient_id>/care-plan": Call(
        "nurse.aalby", "PUT", f"/api/patients/{K}/care-plan", json=plan_change),
    "GET /api/patients/<patient_id>/care-plan/versions": Call(
        "nurse.aalby", "GET", f"/api/patients/{K}/care-plan/versions"),
    "GET /api/patients/<patient_id>/care-plan/versions/<int:number>": Call(
        "nurse.aalby", "GET", f"/api/patients/{K}/care-plan/versions/1"),
    "GET /api/patients/<patient_id>/threshold-proposals": Call(
        "nurse.aalby", "GET", f"/api/patients/{K}/threshold-proposals"),
    "POST /api/patients/<patient_id>/threshold-proposals": propose("nurse.aalby", "Karen"),
    "GET /api/threshold-proposals": Call(
        "doctor.hospital", "GET", "/api/threshold-proposals", "Svend",
        before=(propose("nurse.aalby", "Svend"),)),
    "POST /api/threshold-proposals/<int:proposal_id>/<any(approve, reject, withdraw):action>":
        Call("gp.torvet", "POST", "/api/threshold-proposals/{proposal}/approve", "Poul",
             json={"note": "agreed"}, before=(propose("nurse.aalby", "Poul"),)),
    "GET /api/patients/<patient_id>/episode": Call(
        "nurse.aalby", "GET", f"/api/patients/{K}/episode"),
    "GET /api/patients/<patient_id>/consents": Call(
        "nurse.aalby", "GET", f"/api/patients/{K}/consents"),
    "POST /api/patients/<patient_id>/consents": Call(
        "nurse.aalby", "POST", f"/api/patients/{K}/consents",
        json={"scope": "participation", "granted": True, "method": "written"}),
    "GET /api/patients/<patient_id>/pauses": Call(
        "nurse.aalby", "GET", f"/api/patients/{K}/pauses"),
    "POST /api/patients/<patient_id>/pauses": pause("nurse.aalby", "Karen", 10),
    "POST /api/pauses/<int:pause_id>/cancel": Call(
        "nurse.aalby", "POST", "/api/pauses/{pause}/cancel", "Poul", json={},
        before=(pause("nurse.aalby", "Poul", 20),)),
    "GET /api/handovers": Call(
        "nurse.boestrup", "GET", "/api/handovers", "Birthe",
        before=(hand_over("nurse.aalby", "Birthe", "monitoring", "muni-boestrup"),)),
    "POST /api/patients/<patient_id>/handovers": hand_over(
        "nurse.aalby", "Poul", "monitoring", "muni-boestrup"),
    "POST /api/handovers/<int:handover_id>/accept": Call(
        "nurse.aalby", "POST", "/api/handovers/{handover}/accept", "Svend", json={},
        before=(hand_over("doctor.hospital", "Svend", "monitoring", "muni-aalby"),)),
    "POST /api/handovers/<int:handover_id>/reject": Call(
        "nurse.aalby", "POST", "/api/handovers/{handover}/reject", "Erik", json={},
        before=(hand_over("nurse.boestrup", "Erik", "monitoring", "muni-aalby"),)),
    "POST /api/handovers/<int:handover_id>/withdraw": Call(
        "nurse.boestrup", "POST", "/api/handovers/{handover}/withdraw", "Inge", json={},
        before=(hand_over("nurse.boestrup", "Inge", "monitoring", "muni-aalby"),)),
    "GET /api/patients/<patient_id>/messages": Call(
        "nurse.aalby", "GET", f"/api/patients/{K}/messages"),
    "POST /api/patients/<patient_id>/messages": Call(
        "nurse.aalby", "POST", f"/api/patients/{K}/messages",
        json={"channel": "team", "body": "Audit test message"}),
    "POST /api/patients/<patient_id>/messages/read": Call(
        "nurse.aalby", "POST", f"/api/patients/{K}/messages/read",
        json={"channel": "team", "up_to": "{message_karen}"}),
    "GET /api/messages/unread": Call(
        "nurse.aalby", "GET", "/api/messages/unread",
        before=(Call("gp.torvet", "POST", f"/api/patients/{K}/messages",
                     json={"channel": "team", "body": "Unread for the nurse"}),)),
    "GET /api/me/messages": Call("patient.karen", "GET", "/api/me/messages"),
    "POST /api/me/messages": Call("patient.karen", "POST", "/api/me/messages",
                                  json={"body": "Hello from the audit test"}),
    "POST /api/me/messages/read": Call("patient.karen", "POST", "/api/me/messages/read",
                                       json={"up_to": "{message_karen}"}),
    "GET /api/me/messages/unread": Call("patient.karen", "GET", "/api/me/messages/unread"),
    "GET /api/me/access-log": Call("patient.karen", "GET", "/api/me/access-log"),
    "POST /api/patients/<patient_id>/readings": Call(
        "nurse.aalby", "POST", f"/api/patients/{K}/readings",
        json={"type": "spo2", "value": 95, "method": "telephone", "taken_at": soon(0, -1)}),
    "POST /api/patients/<patient_id>/questionnaire-responses": Call(
        "nurse.aalby", "POST", f"/api/patients/{K}/questionnaire-responses",
        json={"questionnaire": "cat", "answers": CAT, "method": "telephone"}),
    # /fhir
    "GET /fhir/Patient": Call("nurse.aalby", "GET", f"/fhir/Patient?_id={K}"),
    "GET /fhir/Patient/<patient_id>": Call("nurse.aalby", "GET", f"/fhir/Patient/{K}"),
    "GET /fhir/Patient/<patient_id>/$everything": Call(
        "nurse.aalby", "GET", f"/fhir/Patient/{K}/$everything"),
    "GET /fhir/Observation": Call("nurse.aalby", "GET", f"/fhir/Observation?patient={K}"),
    "POST /fhir/Observation": Call("nurse.aalby", "POST", "/fhir/Observation",
                                   json=lambda ids: ids["fhir_reading"]),
    "GET /fhir/Observation/<observation_id>": Call(
        "nurse.aalby", "GET", "/fhir/Observation/{observation}"),
    "GET /fhir/Observation/<observation_id>/_history/<version_id>": Call(
        "nurse.aalby", "GET", "/fhir/Observation/{observation}/_history/1"),
    "GET /fhir/Device/<device_id>": Call("nurse.aalby", "GET", "/fhir/Device/{device}"),
    "GET /fhir/Provenance": Call("nurse.aalby", "GET", f"/fhir/Provenance?patient={K}"),
    "GET /fhir/Provenance/<ident>": Call("nurse.aalby", "GET", "/fhir/Provenance/{provenance}"),
    "GET /fhir/QuestionnaireResponse": Call(
        "nurse.aalby", "GET", f"/fhir/QuestionnaireResponse?patient={K}"),
    "GET /fhir/QuestionnaireResponse/<ident>": Call(
        "nurse.aalby", "GET", "/fhir/QuestionnaireResponse/{response}"),
    "GET /fhir/Task": Call("nurse.aalby", "GET", f"/fhir/Task?patient={K}"),
    "GET /fhir/Task/<ident>": Call("nurse.aalby", "GET", "/fhir/Task/alert-{alert_karen}"),
    "GET /fhir/AuditEvent": Call("patient.karen", "GET", "/fhir/AuditEvent"),
    "GET /fhir/AuditEvent/<ident>": Call("patient.karen", "GET", "/fhir/AuditEvent/{audit}"),
    "GET /fhir/CarePlan": Call("nurse.aalby", "GET", f"/fhir/CarePlan?patient={K}"),
    "GET /fhir/CarePlan/<ident>": Call("nurse.aalby", "GET", "/fhir/CarePlan/{episode}"),
    "GET /fhir/CarePlan/<ident>/_history/<version>": Call(
        "nurse.aalby", "GET", "/fhir/CarePlan/{episode}/_history/1"),
    "GET /fhir/CareTeam": Call("nurse.aalby", "GET", f"/fhir/CareTeam?patient={K}"),
    "GET /fhir/CareTeam/<ident>": Call("nurse.aalby", "GET", f"/fhir/CareTeam/{K}"),
    "GET /fhir/Consent": Call("nurse.aalby", "GET", f"/fhir/Consent?patient={K}"),
    "GET /fhir/Consent/<ident>": Call("nurse.aalby", "GET", "/fhir/Consent/{consent}"),
    "GET /fhir/EpisodeOfCare": Call("nurse.aalby", "GET", f"/fhir/EpisodeOfCare?patient={K}"),
    "GET /fhir/EpisodeOfCare/<ident>": Call("nurse.aalby", "GET", "/fhir/EpisodeOfCare/{episode}"),
    # pages
    "GET /patients/<patient_id>": Call("nurse.aalby", "GET", f"/patients/{K}"),
    "GET /patients/<patient_id>/messages": Call("nurse.aalby", "GET", f"/patients/{K}/messages"),
    "POST /patients/<patient_id>/messages": Call(
        "nurse.aalby", "POST", f"/patients/{K}/messages",
        form={"channel": "team", "body": "From the page"}),
    "GET /messages": Call("nurse.aalby", "GET", "/messages"),
    "GET /patients/<patient_id>/phone": Call("nurse.aalby", "GET", f"/patients/{K}/phone"),
    "POST /patients/<patient_id>/phone/reading": Call(
        "nurse.aalby", "POST", f"/patients/{K}/phone/reading",
        form={"type": "spo2", "value": "94", "method": "telephone",
              "taken_at": local_input(0)[:-2] + "00"}, form_page=f"/patients/{K}/phone"),
    "POST /patients/<patient_id>/phone/questionnaire/<kind>": Call(
        "nurse.aalby", "POST", f"/patients/{K}/phone/questionnaire/cat",
        form={**{k: str(v) for k, v in CAT.items()}, "method": "telephone"},
        form_page=f"/patients/{K}/phone"),
    "GET /patients/<patient_id>/plan": Call("nurse.aalby", "GET", f"/patients/{K}/plan"),
    "POST /patients/<patient_id>/plan": Call(
        "nurse.aalby", "POST", f"/patients/{K}/plan", form={"notes": "Changed on the page"},
        form_page=f"/patients/{K}/plan"),
    "POST /patients/<patient_id>/plan/proposals": Call(
        "nurse.aalby", "POST", "/patients/{birthe}/plan/proposals", "Birthe",
        form={"measurement": "spo2", "red_low": "87", "yellow_low": "91",
              "reason": "from the page"}, form_page="/patients/{birthe}/plan"),
    "GET /proposals": Call("gp.skovvej", "GET", "/proposals", "Jørgen",
                           before=(propose("nurse.boestrup", "Jørgen"),)),
    "POST /proposals/<int:proposal_id>/<any(approve, reject, withdraw):action>": Call(
        "gp.torvet", "POST", "/proposals/{proposal}/reject", "Erik", form={"note": "no"},
        form_page="/proposals", before=(propose("nurse.boestrup", "Erik"),)),
    "GET /patients/<patient_id>/team": Call("nurse.aalby", "GET", f"/patients/{K}/team"),
    "POST /patients/<patient_id>/team/consent": Call(
        "nurse.aalby", "POST", "/patients/{poul}/team/consent", "Poul",
        form={"scope": "participation", "granted": "true", "method": "written"},
        form_page="/patients/{poul}/team"),
    "POST /patients/<patient_id>/team/pauses": Call(
        "nurse.aalby", "POST", "/patients/{birthe}/team/pauses", "Birthe",
        form={"starts_at": local_input(30), "ends_at": local_input(32), "reason": "holiday"},
        form_page="/patients/{birthe}/team"),
    "POST /patients/<patient_id>/team/pauses/<int:pause_id>/cancel": Call(
        "nurse.aalby", "POST", "/patients/{karen}/team/pauses/{pause}/cancel", json=None,
        form={}, form_page=f"/patients/{K}/team", before=(pause("nurse.aalby", "Karen", 40),)),
    "POST /patients/<patient_id>/team/handovers": Call(
        "gp.torvet", "POST", "/patients/{poul}/team/handovers", "Poul",
        form={"responsibility": "treatment", "to_organization": "hosp-lung",
              "reason": "from the page"}, form_page="/patients/{poul}/team"),
    "GET /handovers": Call(
        "doctor.hospital", "GET", "/handovers", "Birthe",
        before=(hand_over("gp.skovvej", "Birthe", "treatment", "hosp-lung"),)),
    "POST /handovers/<int:handover_id>/<decision>": Call(
        "doctor.hospital", "POST", "/handovers/{handover}/reject", "Jørgen", form={},
        form_page="/handovers",
        before=(hand_over("gp.skovvej", "Jørgen", "treatment", "hosp-lung"),)),
    "GET /me": Call("patient.karen", "GET", "/me"),
    "GET /me/plan": Call("patient.karen", "GET", "/me/plan"),
    "GET /me/access-log": Call("patient.karen", "GET", "/me/access-log"),
    "GET /me/messages": Call("patient.karen", "GET", "/me/messages"),
    "POST /me/messages": Call("patient.karen", "POST", "/me/messages",
                              form={"body": "From my page"}),
    "POST /questionnaire/<kind>": Call("patient.karen", "POST", "/questionnaire/cat",
                                       form={k: str(v) for k, v in CAT.items()}),
}

ADMIN = "organisations and accounts: administration, no patient data"
AUDIT = "the audit log's own metadata; reading it is recorded (tests/test_audit_api.py)"
NOT_PATIENT_DATA: dict[str, str] = {
    "GET /login": "the login form", "POST /login": "credentials",
    "POST /logout": "ends the session", "GET /language/<code>": "remembers a language",
    "GET /static/<path:filename>": "assets", "GET /healthz": "health of the platform",
    "GET /metrics": "counts and timings for the operator; nothing clinical, names no patient",
    "POST /api/auth/token": "credentials",
    "POST /api/auth/logout": "ends the caller's sessions and tokens",
    "GET /fhir/metadata": "the CapabilityStatement",
    "GET /questionnaire/<kind>": "the blank questionnaire form",
    "GET /patients/<patient_id>/phone/reading": "redirects to the phone page (audited there)",
    "GET /patients/<patient_id>/phone/questionnaire/<kind>": "redirects to the phone page",
    "GET /fhir/Questionnaire": "questionnaire definitions",
    "GET /fhir/Questionnaire/<ident>": "a questionnaire definition",
    "GET /fhir/Organization": "the directory", "GET /fhir/Organization/<org_id>": "directory",
    "GET /fhir/Practitioner": "the directory", "GET /fhir/PractitionerRole": "the directory",
    "GET /fhir/<any(Practitioner, PractitionerRole):kind>/<ident>": "the directory",
    "GET /api/inbox/unread-count": "a count of the organisation's unread items",
    "GET /api/messages/unread-count": "one number across all threads; names no patient",
    "GET /api/threshold-proposals/count": "one number for the menu badge; names no patient",
    "GET /api/handovers/count": "the number of pending handovers (the menu badge)",
    "GET /api/audit": AUDIT, "GET /api/audit/verify": AUDIT, "GET /admin/audit": AUDIT,
    "GET /admin/organizations": ADMIN, "POST /admin/organizations": ADMIN,
    "POST /admin/organizations/<org_id>/phone": ADMIN,
    "GET /admin/users": ADMIN, "POST /admin/users": ADMIN,
    "POST /admin/users/<username>/<action>": ADMIN,
    "POST /admin/users/<username>/password": ADMIN,
    "GET /api/admin/organizations": ADMIN, "POST /api/admin/organizations": ADMIN,
    "PATCH /api/admin/organizations/<org_id>": ADMIN,
    "GET /api/admin/users": ADMIN, "POST /api/admin/users": ADMIN,
    "POST /api/admin/users/<username>/<action>": ADMIN,
}


def rule_keys(app: Flask) -> set[str]:
    return {f"{method} {rule.rule}" for rule in app.url_map.iter_rules()
            for method in rule.methods or () if method not in ("HEAD", "OPTIONS")}


def test_every_endpoint_is_classified(tmp_path) -> None:
    settings = load_settings({"TELEKOL_DATA_DIR": str(tmp_path / "var")})
    keys = rule_keys(create_app(settings, live=False))
    unclassified = sorted(keys - PATIENT_DATA.keys() - NOT_PATIENT_DATA.keys())
    assert not unclassified, ("classify these in tests/test_audit_endpoints.py (PATIENT_DATA "
                              "with a request, or NOT_PATIENT_DATA with a reason): "
                              + "; ".join(unclassified))
    assert not PATIENT_DATA.keys() & NOT_PATIENT_DATA.keys()
    assert not (PATIENT_DATA.keys() | NOT_PATIENT_DATA.keys()) - keys, "stale entries"


class World:
    """One seeded database per backend with readings, alerts, answers and manual entries."""

    def __init__(self, app: Flask, engine: Any, fixture: dict[str, Any]) -> None:
        self.app, self.engine, self.fixture = app, engine, fixture
        self.clients: dict[str, Any] = {}
        self.tokens: dict[str, dict[str, str]] = {}

    def patient(self, first_name: str) -> str:
        return next(p["id"] for p in self.fixture["patients"]
                    if p["name"].split()[0] == first_name)

    def ids(self) -> dict[str, Any]:
        """Return the names the calls' paths and bodies use, looked up now."""
        found: dict[str, Any] = {name.lower(): self.patient(name) for name in (
            "Karen", "Poul", "Inge", "Jørgen", "Birthe", "Erik", "Svend", "Else")}
        karen = found["karen"]
        with Session(self.engine) as session:
            def last(query: Any) -> Any:
                return session.exec(query.limit(1)).first()
            for name in ("karen", "poul", "birthe"):
                found[f"alert_{name}"] = last(select(Alert.id).where(
                    Alert.patient_id == found[name]).order_by(col(Alert.id).desc()))
            found["inbox_karen"] = last(select(InboxItem.id).join(
                Alert, col(Alert.id) == col(InboxItem.alert_id)).where(
                Alert.patient_id == karen, InboxItem.organization_id == "gp-torvet"))
            found["observation"] = last(select(Observation.id).where(
                Observation.patient_id == karen))
            found["device"] = last(select(Device.id).where(Device.patient_id == karen))
            for name, kind in (("provenance", "Provenance"),
                               ("response", "QuestionnaireResponse")):
                found[name] = last(select(StoredResource.id).where(
                    StoredResource.patient_id == karen, StoredResource.resource_type == kind))
            found["audit"] = last(select(AuditRecord.id).where(AuditRecord.patient_id == karen))
            found["episode"] = last(select(Episode.id).where(
                Episode.patient_id == karen, Episode.status == "active"))
            plan = last(select(CarePlanVersion).where(
                CarePlanVersion.episode_id == found["episode"]).order_by(
                col(CarePlanVersion.version).desc()))
            found["plan_version"], found["plan_content"] = plan.version, plan.content
            found["consent"] = last(select(Consent.id).where(Consent.patient_id == karen))
            found["pause"] = last(select(MonitoringPause.id).order_by(
                col(MonitoringPause.id).desc()))
            found["handover"] = last(select(Handover.id).order_by(col(Handover.id).desc()))
            found["proposal"] = last(select(ThresholdProposal.id).order_by(
                col(ThresholdProposal.id).desc()))
            found["message_karen"] = self.newest_message(session, karen)
        found["fhir_reading"] = fhir_reading(karen)
        return found

    @staticmethod
    def newest_message(session: Session, patient_id: str) -> int | None:
        from telekol.server.models import Message

        return session.exec(select(Message.id).where(Message.patient_id == patient_id)
                            .order_by(col(Message.id).desc()).limit(1)).first()

    def bearer(self, username: str) -> dict[str, str]:
        if username not in self.tokens:
            body = self.app.test_client().post("/api/auth/token", json={
                "username": username, "password": DEMO_PASSWORD}).get_json()
            self.tokens[username] = {"Authorization": f"Bearer {body['access_token']}"}
        return self.tokens[username]

    def browser(self, username: str) -> Any:
        if username not in self.clients:
            client = self.app.test_client()
            page = client.get("/login").get_data(as_text=True)
            response = client.post("/login", data={"username": username,
                                                   "password": DEMO_PASSWORD,
                                                   "csrf_token": FormReader.token(page)})
            assert response.status_code == 302, f"{username} could not log in"
            self.clients[username] = client
        return self.clients[username]

    def send(self, call: Call) -> Any:
        ids = self.ids()
        path = call.path.format(**ids)
        if call.path.startswith(("/api", "/fhir")):
            body = call.json(ids) if callable(call.json) else _filled(call.json, ids)
            return self.app.test_client().open(path, method=call.method, json=body,
                                                headers=self.bearer(call.user))
        client = self.browser(call.user)
        if call.method == "GET":
            return client.get(path)
        page_path = (call.form_page or call.path).format(**ids)
        page = client.get(page_path).get_data(as_text=True)
        form = FormReader.fields(page, path, page_path)
        form.update(call.form or {})
        return client.post(path, data=form)

    def newest_audit_id(self) -> int:
        with Session(self.engine) as session:
            return session.exec(select(AuditRecord.id).order_by(
                col(AuditRecord.id).desc()).limit(1)).first() or 0

    def audited_since(self, after: int) -> list[AuditRecord]:
        with Session(self.engine) as session:
            return list(session.exec(select(AuditRecord).where(col(AuditRecord.id) > after))
                        .all())


def _filled(body: dict[str, Any] | None, ids: dict[str, Any]) -> dict[str, Any] | None:
    if body is None:
        return None
    text = json.dumps(body)
    for name, value in ids.items():
        if isinstance(value, int | str):
            text = text.replace(f'"{{{name}}}"', json.dumps(value))
    return json.loads(text)


def fhir_reading(patient_id: str) -> dict[str, Any]:
    """A SpO2 reading the patient gave by telephone, as a FHIR Observation to POST."""
    return {"resourceType": "Observation", "status": "final",
            "code": {"coding": [{"system": "http://loinc.org", "code": "59408-5"}]},
            "subject": {"reference": f"Patient/{patient_id}"},
            "effectiveDateTime": soon(0, -2),
            "valueQuantity": {"value": 93, "unit": "%", "system": "http://unitsofmeasure.org",
                              "code": "%"}}


class FormReader(HTMLParser):
    """Collects the fields of the form posting to `action` as a browser would send them."""

    def __init__(self, action: str, page: str) -> None:
        super().__init__()
        self.action, self.page, self.inside, self.found = action, page, False, {}
        self._textarea: str | None = None
        self._select: str | None = None

    @classmethod
    def fields(cls, html: str, action: str, page: str) -> dict[str, str]:
        """Return the fields of the form on `page` (its html) that posts to `action`."""
        reader = cls(action, page)
        reader.feed(html)
        return reader.found

    @staticmethod
    def token(html: str) -> str:
        return html.split('name="csrf_token" value="')[1].split('"')[0]

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        named = {k: v or "" for k, v in attrs}
        if tag == "form":
            target = named.get("action", "").split("?")[0] or self.page  # none: the page
            self.inside = target == self.action
        elif not self.inside or "name" not in named or "disabled" in named:
            return
        elif tag == "input" and named.get("type") in ("checkbox", "radio"):
            if "checked" in named:
                self.found[named["name"]] = named.get("value", "on")
        elif tag == "input" and named.get("type") != "submit":
            self.found[named["name"]] = named.get("value", "")
        elif tag == "textarea":
            self._textarea = named["name"]
            self.found[self._textarea] = ""
        elif tag == "select":
            self._select = named["name"]
        if tag == "option" and self._select and ("selected" in named or
                                                 self._select not in self.found):
            self.found[self._select] = named.get("value", "")

    def handle_data(self, data: str) -> None:
        if self._textarea:
            self.found[self._textarea] += data

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self.inside = False
        elif tag == "textarea":
            self._textarea = None
        elif tag == "select":
            self._select = None


@pytest.fixture(scope="module", params=BACKENDS)
def world(request, database_factory, templates, tmp_path_factory) -> World:
    """Return a world on its own copy of the demo database, shared by this module's tests."""
    from telekol.server.device_messages.measurements import parse_measurements
    from telekol.server.ingest.batch import IngestService, ParsedDelivery
    from telekol.server.ingest.self_report import QuestionnaireService

    template = templates[request.param]
    url = database_factory(request.param, template)
    engine = make_engine(url)
    now = datetime.now(UTC)
    service = IngestService(engine)
    for index, device in enumerate(template.fixture["devices"]):  # a red SpO2 for everyone
        body = json.dumps({"msg_id": f"audit-{index}", "taken_at": now.isoformat(),
                           "readings": [{"code": "spo2", "value": 84}]}).encode()
        topic = f"telekol/v1/devices/{device['device_id']}/measurements"
        service.ingest([ParsedDelivery(topic, device["device_id"], now,
                                       parse_measurements(body, now), body)])
    quarantined = json.dumps({"msg_id": "audit-q", "taken_at": now.isoformat(),
                              "readings": [{"code": "spo2", "value": 150}]}).encode()
    device = template.fixture["devices"][0]["device_id"]
    service.ingest([ParsedDelivery(f"telekol/v1/devices/{device}/measurements", device, now,
                                   parse_measurements(quarantined, now), quarantined)])
    settings = load_settings({"TELEKOL_DATA_DIR": str(tmp_path_factory.mktemp("var"))})
    app = create_app(settings.with_overrides(database_url=url), live=False)
    made = World(app, engine, template.fixture)
    karen = made.patient("Karen")
    QuestionnaireService(engine).submit(karen, "cat", CAT)
    response = app.test_client().post("/fhir/Observation", json=fhir_reading(karen),
                                      headers=made.bearer("nurse.aalby"))
    assert response.status_code == 201, response.get_data(as_text=True)
    yield made
    engine.dispose()


@pytest.mark.parametrize("rule", sorted(PATIENT_DATA))
def test_every_patient_data_endpoint_leaves_an_audit_record(world: World, rule: str) -> None:
    call = PATIENT_DATA[rule]
    for step in call.before:
        prepared = world.send(step)
        assert prepared.status_code < 400, f"{step.path}: {prepared.get_data(as_text=True)}"
    after = world.newest_audit_id()
    response = world.send(call)
    assert response.status_code < 400, response.get_data(as_text=True)[:500]
    door = "api" if call.path.startswith("/api") else (
        "fhir" if call.path.startswith("/fhir") else "ui")
    patient = world.patient(call.patient)
    found = [(r.patient_id, r.door, r.outcome) for r in world.audited_since(after)]
    assert (patient, door, "success") in found, f"{rule} left {found}"
