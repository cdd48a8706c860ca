"""Standard FHIR clients nobody here wrote (fhirclient, fhirpy) against the running server."""

from __future__ import annotations

import json
import threading
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from fhirclient import client as smart_client
from fhirclient.models.observation import Observation as SmartObservation
from fhirclient.models.patient import Patient as SmartPatient
from fhirpy import SyncFHIRClient
from sqlmodel import Session, select
from telekol.fhir.validation import validate_resource
from telekol.server.db import make_engine
from telekol.server.device_messages.measurements import parse_measurements
from telekol.server.ingest.batch import IngestService, ParsedDelivery
from telekol.server.models import Observation

from tests.stack_fixtures import Stack

pytestmark = pytest.mark.integration

CPR = "urn:oid:1.2.208.176.1.2"
SPO2 = "http://loinc.org|2708-6"
HISTORY = 2_000


def store_spo2(stack: Stack, device: dict, count: int, start: datetime) -> None:
    """Store `count` SpO2 readings a minute apart through the ingest service (no MQTT)."""
    engine = make_engine(stack.settings.database_url)
    service, received = IngestService(engine), datetime.now(UTC)
    run = uuid.uuid4().hex[:8]
    objects = [{"msg_id": f"h-{run}-{i}", "readings": [{"code": "spo2", "value": 90 + i % 9}],
                "taken_at": (start + timedelta(minutes=i)).isoformat()} for i in range(count)]
    for first in range(0, count, 500):
        raw = json.dumps(objects[first:first + 500]).encode()
        service.ingest([ParsedDelivery("t", device["device_id"], received,
                                       parse_measurements(raw, received))])
    engine.dispose()


def stored_ids(stack: Stack, patient_id: str) -> set[str]:
    """Return the ids of every SpO2 Observation of a patient, straight from the database."""
    engine = make_engine(stack.settings.database_url)
    with Session(engine) as session:
        ids = set(session.exec(select(Observation.id).where(
            Observation.patient_id == patient_id, Observation.type_code == "spo2")).all())
    engine.dispose()
    return ids


def clinician_of(stack: Stack, patient_id: str) -> str:
    """Return a clinician on the patient's care team."""
    team = next(p for p in stack.fixture["patients"] if p["id"] == patient_id)["care_team"]
    return next(u["username"] for u in stack.fixture["users"] if u["organization"] == team[0])


@pytest.fixture
def fhirpy(stack: Stack) -> SyncFHIRClient:
    """Return fhirpy's client signed in as a clinician of the last demo patient's team."""
    token = stack.token(clinician_of(stack, stack.device(7)["patient"]))
    return SyncFHIRClient(f"{stack.base_url}/fhir", authorization=f"Bearer {token}")


def test_fhirpy_finds_a_patient_by_cpr_and_pages_through_thousands_of_readings(
        stack: Stack, fhirpy: SyncFHIRClient) -> None:
    device = stack.device(7)
    cpr = next(p["cpr"] for p in stack.fixture["patients"] if p["id"] == device["patient"])
    store_spo2(stack, device, HISTORY, datetime(2024, 1, 1, tzinfo=UTC))
    before = stored_ids(stack, device["patient"])
    patient = fhirpy.resources("Patient").search(identifier=f"{CPR}|{cpr}").get()
    assert patient["id"] == device["patient"]
    arriving = threading.Thread(target=store_spo2, args=(
        stack, device, 300, datetime.now(UTC) - timedelta(minutes=400)))
    arriving.start()  # new readings keep arriving while the client pages
    try:
        found = (fhirpy.resources("Observation").search(patient=patient["id"], code=SPO2)
                 .sort("-date").limit(250).fetch_all())
    finally:
        arriving.join()
    ids = [o["id"] for o in found]
    assert len(ids) == len(set(ids)), "a reading was returned twice"
    assert before <= set(ids), "a reading stored before the walk began was skipped"
    dates = [datetime.fromisoformat(o["effectiveDateTime"]) for o in found]
    assert dates == sorted(dates, reverse=True)
    assert len(ids) >= HISTORY
    for observation in found:
        validate_resource(observation.serialize())


def test_fhirpy_reads_every_resource_type_and_each_validates(
        stack: Stack, fhirpy: SyncFHIRClient) -> None:
    device = stack.device(7)
    entered = fhirpy.resource("Observation", status="final", subject={
        "reference": f"Patient/{device['patient']}"},
        code={"coding": [{"system": "http://loinc.org", "code": "8867-4"}]},
        effectiveDateTime=datetime.now(UTC).isoformat(timespec="seconds"),
        valueQuantity={"value": 72, "unit": "/min", "system": "http://unitsofmeasure.org",
                       "code": "/min"})
    entered.save()  # POST /fhir/Observation: a reading told by telephone
    provenance = fhirpy.resources("Provenance").search(
        target=f"Observation/{entered['id']}").get()
    role = fhirpy.resources("PractitionerRole").search(organization="hosp-lung").first()
    references = [("Patient", device["patient"]), ("Device", device["device_id"]),
                  ("Observation", entered["id"]), ("Provenance", provenance["id"]),
                  ("PractitionerRole", role["id"]),
                  ("Practitioner", role["practitioner"]["reference"].split("/")[1]),
                  ("Organization", role["organization"]["reference"].split("/")[1])]
    for kind, ident in references:
        resource = fhirpy.reference(kind, ident).to_resource()
        assert resource["resourceType"] == kind
        validate_resource(resource.serialize())
    everything = fhirpy.execute(f"Patient/{device['patient']}/$everything", method="get")
    for entry in everything["entry"]:
        validate_resource(entry["resource"])


def test_fhirclient_reads_the_capability_statement_finds_a_patient_and_reads_readings(
        stack: Stack) -> None:
    patient_id = stack.device(0)["patient"]
    cpr = next(p["cpr"] for p in stack.fixture["patients"] if p["id"] == patient_id)
    smart = smart_client.FHIRClient(settings={"app_id": "telekol-tests",
                                              "api_base": f"{stack.base_url}/fhir"})
    # fhirclient signs nothing without SMART OAuth; a bearer token goes on its session.
    smart.server.session.headers["Authorization"] = f"Bearer {stack.token('nurse.aalby')}"
    smart.prepare()
    statement = smart.server.capabilityStatement
    assert {r.type for r in statement.rest[0].resource} >= {"Patient", "Observation"}
    patients = list(SmartPatient.where(struct={"identifier": f"{CPR}|{cpr}"})
                    .perform_resources_iter(smart.server))
    assert [p.id for p in patients] == [patient_id]
    store_spo2(stack, stack.device(0), 3, datetime.now(UTC) - timedelta(hours=1))
    bundle = next(SmartObservation.where(struct={"patient": patient_id, "code": SPO2,
                                                 "_count": "2"}).perform_iter(smart.server))
    assert bundle.total >= 3 and len(bundle.entry) == 2
    assert any(link.relation == "next" for link in bundle.link)
    observation = SmartObservation.read(bundle.entry[0].resource.id, smart.server)
    assert observation.code.coding[0].code == "2708-6"
    validate_resource(observation.as_json())
    validate_resource(SmartPatient.read(patient_id, smart.server).as_json())
