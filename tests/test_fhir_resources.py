"""Patient, Device and OperationOutcome resources, and R4B validation."""

import pytest
from telekol.fhir.cpr import CPR_SYSTEM, InvalidCPR
from telekol.fhir.device import DEVICE_ID_SYSTEM, device_resource
from telekol.fhir.organization import SOR_SYSTEM, organization_resource
from telekol.fhir.outcome import operation_outcome
from telekol.fhir.patient import patient_resource
from telekol.fhir.validation import InvalidResource, validate_resource


def test_a_patient_carries_the_cpr_as_its_official_identifier():
    patient = patient_resource(
        patient_id="pat-1", cpr="020160-9995", family="Lauridsen", given=["Einer", "Test"],
        managing_org_id="org-1",
    )  # fmt: skip
    assert patient == {
        "resourceType": "Patient",
        "id": "pat-1",
        "identifier": [{"use": "official", "system": CPR_SYSTEM, "value": "0201609995"}],
        "name": [{"use": "official", "family": "Lauridsen", "given": ["Einer", "Test"]}],
        "gender": "male",
        "birthDate": "1960-01-02",
        "managingOrganization": {"reference": "Organization/org-1"},
    }
    assert CPR_SYSTEM == "urn:oid:1.2.208.176.1.2"


def test_a_patient_without_given_names_or_organisation_leaves_them_out():
    patient = patient_resource(patient_id="p2", cpr="0201609996", family="Lauridsen", given=[])
    assert patient["name"] == [{"use": "official", "family": "Lauridsen"}]
    assert patient["gender"] == "female"
    assert "managingOrganization" not in patient


def test_a_patient_with_an_impossible_cpr_is_refused():
    with pytest.raises(InvalidCPR):
        patient_resource(patient_id="p3", cpr="3102601234", family="X", given=["Y"])


def test_a_patient_with_an_invalid_fhir_id_is_refused():
    with pytest.raises(InvalidResource):
        patient_resource(patient_id="no spaces allowed", cpr="0201609995", family="X", given=[])


def test_a_device_is_identified_by_its_device_id_and_linked_to_its_patient():
    device = device_resource(
        device_id="OXI-0001", patient_id="pat-1", model="Nonin 3230", serial="SN1",
        kind="pulse oximeter",
    )  # fmt: skip
    assert device == {
        "resourceType": "Device",
        "id": "OXI-0001",
        "identifier": [{"system": DEVICE_ID_SYSTEM, "value": "OXI-0001"}],
        "status": "active",
        "type": {"text": "pulse oximeter"},
        "deviceName": [{"name": "Nonin 3230", "type": "model-name"}],
        "serialNumber": "SN1",
        "patient": {"reference": "Patient/pat-1"},
    }
    assert DEVICE_ID_SYSTEM == "https://telekol.dk/fhir/sid/device-id"


def test_an_unassigned_device_without_metadata_has_only_what_is_known():
    device = device_resource(device_id="d1", patient_id=None, model=None, serial=None, kind="hub")
    assert set(device) == {"resourceType", "id", "identifier", "status", "type"}


@pytest.mark.parametrize(("phone", "telecom"), [
    ("+4572000021", [{"system": "phone", "value": "+4572000021", "use": "work"}]),
    (None, None),
])
def test_an_organisation_carries_its_sor_code_and_the_number_patients_call(phone, telecom):
    org = organization_resource(org_id="muni-aalby", name="Hjemmesygeplejen, Aalby Kommune",
                                kind="municipality", sor_code="900000000000021", phone=phone)
    assert org["identifier"] == [{"use": "official", "system": SOR_SYSTEM,
                                  "value": "900000000000021"}]
    assert org.get("telecom") == telecom


@pytest.mark.parametrize(
    "code", ["not-found", "invalid", "login", "forbidden", "not-supported", "exception",
             "processing"],
)  # fmt: skip
def test_an_operation_outcome_has_one_issue_and_validates(code):
    outcome = operation_outcome("error", code, "what went wrong")
    assert outcome == {
        "resourceType": "OperationOutcome",
        "issue": [{"severity": "error", "code": code, "diagnostics": "what went wrong"}],
    }
    assert validate_resource(outcome) is outcome


@pytest.mark.parametrize(("severity", "code"), [("bad", "invalid"), ("error", "not-a-type")])
def test_an_operation_outcome_refuses_codes_outside_its_value_sets(severity, code):
    with pytest.raises(ValueError):
        operation_outcome(severity, code, "x")


@pytest.mark.parametrize(
    ("resource", "message"),
    [
        ({}, "no resourceType"),
        ({"resourceType": "NotAResource"}, "not an R4B resource type"),
        ({"resourceType": "Observation", "status": "final"}, "code"),
        ({"resourceType": "Patient", "active": "perhaps"}, "active"),
        ({"resourceType": "Patient", "unknownElement": 1}, "unknownElement"),
        ({"resourceType": "Patient", "birthDate": "1960-02-30"}, "birthDate"),
    ],
)
def test_invalid_resources_raise_invalid_resource_with_the_pydantic_message(resource, message):
    with pytest.raises(InvalidResource, match=message):
        validate_resource(resource)


def test_invalid_resource_is_a_value_error():
    assert issubclass(InvalidResource, ValueError)


def test_r4b_models_are_used_and_r5_only_elements_are_refused():
    # Observation.triggeredBy exists only in R5: R4B must refuse it.
    resource = {
        "resourceType": "Observation", "status": "final", "code": {"text": "x"},
        "triggeredBy": [{"observation": {"reference": "Observation/1"}, "type": "reflex"}],
    }  # fmt: skip
    with pytest.raises(InvalidResource):
        validate_resource(resource)


def test_demo_patients_names_match_the_sex_their_cpr_encodes() -> None:
    from telekol.fhir.cpr import sex
    from telekol.server.demo.seed import PATIENTS

    female = {"Karen", "Inge", "Birthe", "Else"}
    for cpr, given, _family, _team in PATIENTS:
        assert sex(cpr) == ("female" if given.split()[0] in female else "male"), given
