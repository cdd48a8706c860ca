"""Mapping a Measurement to FHIR R4 Observations, and the measurement catalogue."""

from datetime import UTC, datetime

import pytest
from telekol.fhir.codes import (
    LOINC,
    MDC,
    MEASUREMENT_TYPES,
    OBSERVATION_KEY_SYSTEM,
    READING_CODES,
    UCUM,
    plausible_range,
    type_for_coding,
    type_for_reading,
)
from telekol.fhir.observation import Triage, observations_for, profiles_for
from telekol.fhir.validation import validate_resource
from telekol.server.device_messages.measurements import Measurement, Reading

ISSUED = datetime(2026, 11, 25, 8, 0, 0, 250000, tzinfo=UTC)
SD = "http://hl7.org/fhir/StructureDefinition/"


def measurement(*readings, msg_id="M-1"):
    return Measurement(
        msg_id=msg_id,
        taken_at=datetime(2026, 11, 25, 6, 31, tzinfo=UTC),
        taken_at_text="2026-11-25T07:31:00+01:00",
        readings=tuple(readings),
        device=None,
        raw="{}",
    )


def mapped(*readings, triage=None):
    return observations_for(
        measurement(*readings), patient_id="pat-1", device_id="dev-1", issued=ISSUED, triage=triage
    )


def codings(concept):
    return [(c["system"], c["code"]) for c in concept["coding"]]


@pytest.mark.parametrize(
    ("reading", "expected_codings", "value", "ucum", "category"),
    [
        (Reading("spo2", 91.0, "%"), [(LOINC, "2708-6"), (LOINC, "59408-5"), (MDC, "150456")],
         91, "%", "vital-signs"),
        (Reading("pulse", 88.0, "/min"), [(LOINC, "8867-4"), (MDC, "149530")], 88, "/min",
         "vital-signs"),
        (Reading("resp_rate", 18.0, "/min"), [(LOINC, "9279-1"), (MDC, "151562")], 18, "/min",
         "vital-signs"),
        (Reading("temperature", 37.2, "Cel"), [(LOINC, "8310-5"), (MDC, "150364")], 37.2, "Cel",
         "vital-signs"),
        (Reading("weight", 72.0, "kg"), [(LOINC, "29463-7"), (MDC, "188736")], 72.0, "kg",
         "vital-signs"),
        (Reading("fev1", 1.23, "L"), [(LOINC, "20150-9"), (MDC, "152586")], 1.23, "L", "exam"),
        (Reading("fvc", 2.5, "L"), [(LOINC, "19868-9"), (MDC, "188928")], 2.5, "L", "exam"),
        (Reading("pef", 350.0, "L/min"), [(LOINC, "19935-6"), (MDC, "152584")], 350.0, "L/min",
         "exam"),
    ],
)  # fmt: skip
def test_each_reading_maps_to_loinc_mdc_and_a_ucum_quantity(
    reading, expected_codings, value, ucum, category
):
    ((type_code, resource),) = mapped(reading)
    assert type_code == reading.code
    assert codings(resource["code"]) == expected_codings
    assert resource["code"]["text"] == MEASUREMENT_TYPES[type_code].display_en
    quantity = resource["valueQuantity"]
    assert quantity["system"] == UCUM and quantity["code"] == ucum
    assert quantity["value"] == value and type(quantity["value"]) is type(value)
    assert resource["category"][0]["coding"][0] == {
        "system": "http://terminology.hl7.org/CodeSystem/observation-category",
        "code": category,
        "display": "Vital Signs" if category == "vital-signs" else "Exam",
    }
    validate_resource(resource)


def test_the_common_elements_point_at_patient_device_and_times():
    ((_, resource),) = mapped(Reading("spo2", 91.5, "%"))
    assert resource["resourceType"] == "Observation"
    assert resource["status"] == "final"
    assert resource["subject"] == {"reference": "Patient/pat-1"}
    assert resource["device"] == {"reference": "Device/dev-1"}
    assert resource["effectiveDateTime"] == "2026-11-25T07:31:00+01:00"
    assert resource["issued"] == "2026-11-25T08:00:00.250Z"
    assert resource["valueQuantity"]["value"] == 91.5
    assert resource["identifier"] == [{"system": OBSERVATION_KEY_SYSTEM, "value": "dev-1-M-1-spo2"}]
    assert "id" not in resource and "meta" not in resource


def test_blood_pressure_is_one_panel_with_systolic_then_diastolic_components():
    results = mapped(
        Reading("bp_dia", 80.0, "mm[Hg]"),
        Reading("spo2", 95.0, "%"),
        Reading("bp_sys", 120.5, "mm[Hg]"),
    )
    assert [code for code, _ in results] == ["bp", "spo2"]
    panel = results[0][1]
    assert codings(panel["code"]) == [(LOINC, "85354-9"), (MDC, "150020")]
    assert "valueQuantity" not in panel
    systolic, diastolic = panel["component"]
    assert codings(systolic["code"]) == [(LOINC, "8480-6"), (MDC, "150021")]
    assert codings(diastolic["code"]) == [(LOINC, "8462-4"), (MDC, "150022")]
    assert systolic["valueQuantity"] == {
        "value": 120.5, "unit": "mmHg", "system": UCUM, "code": "mm[Hg]"
    }  # fmt: skip
    assert diastolic["valueQuantity"]["value"] == 80
    assert type(diastolic["valueQuantity"]["value"]) is int  # integral mm[Hg] stays an int
    assert panel["identifier"][0]["value"] == "dev-1-M-1-bp"
    validate_resource(panel)


@pytest.mark.parametrize(
    ("severity", "direction", "code", "display"),
    [
        ("red", "low", "LL", "Critical low"),
        ("yellow", "low", "L", "Low"),
        ("red", "high", "HH", "Critical high"),
        ("yellow", "high", "H", "High"),
        ("green", None, "N", "Normal"),
        ("red", None, "AA", "Critical abnormal"),
        ("yellow", None, "A", "Abnormal"),
    ],
)
def test_triage_adds_a_v3_interpretation(severity, direction, code, display):
    triage = {"spo2": Triage(severity, direction)}
    ((_, resource),) = mapped(Reading("spo2", 87.0, "%"), triage=triage)
    assert resource["interpretation"][0]["coding"] == [
        {
            "system": "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation",
            "code": code,
            "display": display,
        }
    ]
    assert "referenceRange" not in resource
    validate_resource(resource)


def test_triage_reference_ranges_are_copied_and_only_for_their_type():
    low = {"value": 88, "unit": "%", "system": UCUM, "code": "%"}
    ranges = ({"low": low, "text": "red limit"},)
    triage = {"spo2": Triage("red", "low", ranges)}
    spo2, pulse = mapped(Reading("spo2", 87.0, "%"), Reading("pulse", 70.0, "/min"), triage=triage)
    assert spo2[1]["referenceRange"] == [{"low": low, "text": "red limit"}]
    assert "interpretation" not in pulse[1] and "referenceRange" not in pulse[1]
    validate_resource(spo2[1])


@pytest.mark.parametrize(("severity", "direction"), [("orange", None), ("red", "sideways")])
def test_triage_rejects_unknown_severities_and_directions(severity, direction):
    with pytest.raises(ValueError):
        Triage(severity, direction)


@pytest.mark.parametrize(
    ("type_code", "profile"),
    [("spo2", "oxygensat"), ("pulse", "heartrate"), ("resp_rate", "resprate"),
     ("temperature", "bodytemp"), ("weight", "bodyweight"), ("bp", "bp")],
)  # fmt: skip
def test_vital_signs_have_their_profile_and_the_vitalsigns_profile(type_code, profile):
    assert profiles_for(type_code) == [SD + profile, SD + "vitalsigns"]


@pytest.mark.parametrize("type_code", ["fev1", "fvc", "pef"])
def test_spirometry_and_peak_flow_claim_no_vital_signs_profile(type_code):
    assert profiles_for(type_code) == []


def test_every_mapped_resource_validates_with_meta_and_id_added():
    every = [Reading(c, plausible_range(c)[0] + 1, type_for_reading(c).unit) for c in READING_CODES]
    results = mapped(*every)
    assert sorted(code for code, _ in results) == sorted(MEASUREMENT_TYPES)
    for type_code, resource in results:
        stored = {**resource, "id": "obs-1", "meta": {"profile": profiles_for(type_code)}}
        assert validate_resource(stored) is stored


@pytest.mark.parametrize(
    ("system", "code", "expected"),
    [
        (LOINC, "2708-6", "spo2"),
        (LOINC, "59408-5", "spo2"),
        (MDC, "150456", "spo2"),
        (None, "8867-4", "pulse"),
        (LOINC, "85354-9", "bp"),
        (MDC, "152584", "pef"),
        (LOINC, "8480-6", None),  # a component code is not a searchable top-level code
        (MDC, "2708-6", None),  # right code, wrong system
        (LOINC, "12345-6", None),
    ],
)
def test_type_for_coding_finds_a_type_by_any_top_level_coding(system, code, expected):
    found = type_for_coding(system, code)
    assert (found.code if found else None) == expected


@pytest.mark.parametrize(
    ("code", "low", "high"),
    [("spo2", 50, 100), ("pulse", 20, 250), ("resp_rate", 4, 80), ("fev1", 0.1, 8),
     ("fvc", 0.1, 10), ("pef", 20, 1000), ("weight", 20, 350), ("temperature", 25, 45),
     ("bp_sys", 40, 300), ("bp_dia", 20, 200)],
)  # fmt: skip
def test_plausibility_limits_are_the_agreed_technical_limits(code, low, high):
    assert plausible_range(code) == (low, high)


def test_the_catalogue_lists_loinc_before_mdc_for_every_type():
    for mtype in MEASUREMENT_TYPES.values():
        systems = [c.system for c in mtype.codings]
        assert systems[0] == LOINC and systems[-1] == MDC, mtype.code
