"""The COPD programme file: valid care-plan content, every number with its source."""

from __future__ import annotations

import pytest
from telekol.server.care.plan_content import parse_content
from telekol.server.care.programme import UnknownProgramme, programme


def test_the_copd_defaults_are_valid_care_plan_content() -> None:
    content = parse_content(programme("copd").plan_content("Hjemmesygeplejen"))
    assert content.thresholds["spo2"].red_low == 88
    assert content.thresholds["spo2"].yellow_low == 92
    assert {s.code for s in content.schedules} == {"spo2"}
    assert "Hjemmesygeplejen" in content.self_care.red


def test_every_default_limit_and_schedule_names_its_source() -> None:
    copd = programme("copd")
    assert set(copd.threshold_sources) == set(copd.thresholds)
    assert all(text.strip() for text in copd.threshold_sources.values())
    assert len(copd.schedule_sources) == len(copd.schedules)
    assert all(text.strip() for text in copd.schedule_sources)


@pytest.mark.parametrize("name", ["nope", "../copd", ""])
def test_an_unknown_programme_is_refused(name: str) -> None:
    with pytest.raises(UnknownProgramme):
        programme(name)


def test_a_newly_enrolled_patient_is_judged_against_the_programme_defaults(engine) -> None:
    from datetime import timedelta

    from sqlmodel import Session, select
    from telekol.server.accounts.admin import add_patient
    from telekol.server.accounts.devices import provision_device
    from telekol.server.care.plan import current_version
    from telekol.server.ingest.batch import IngestService
    from telekol.server.models import Alert, MeasurementSchedule, Threshold

    from tests.test_alert_rules_ingest import measure
    from tests.test_ingest import NOW

    with Session(engine) as session:
        patient = add_patient(session, "0707709999", "Ny Test", "Patient",
                              ["muni-aalby", "gp-torvet"])
        provision_device(session, patient_id=patient.id, device_id="bp-new", password="x" * 16)
        session.commit()
        plan = current_version(session, patient.id)
        assert plan is not None and plan.version == 1
        limits = {t.measurement: t for t in session.exec(
            select(Threshold).where(Threshold.patient_id == patient.id))}
        assert "TELBIL" in limits["bp_sys"].source
        schedules = session.exec(select(MeasurementSchedule).where(
            MeasurementSchedule.patient_id == patient.id)).all()
        assert {s.code for s in schedules} == {"spo2"}
    IngestService(engine, clock=lambda: NOW).ingest(
        [measure("bp-new", "bp1", NOW - timedelta(minutes=1), bp_sys=180, bp_dia=100)])
    with Session(engine) as session:
        raised = {(a.rule, a.severity) for a in session.exec(
            select(Alert).where(Alert.patient_id == patient.id))}
    assert ("threshold:bp_sys", "yellow") in raised and ("threshold:bp_dia", "yellow") in raised


def test_a_patient_marked_hypercapnic_starts_from_the_hypercapnic_limits(engine) -> None:
    from sqlmodel import Session, select
    from telekol.server.accounts.admin import add_patient
    from telekol.server.models import PatientRuleSettings, Threshold

    with Session(engine) as session:
        patient = add_patient(session, "0808709999", "Hyper Test", "Patient",
                              ["muni-aalby", "gp-torvet"], hypercapnic=True)
        session.commit()
        spo2 = session.exec(select(Threshold).where(Threshold.patient_id == patient.id,
                                                    Threshold.measurement == "spo2")).one()
        assert (spo2.red_low, spo2.yellow_low) == (84, 88)
        assert "Scale 2" in spo2.source
        settings = session.get(PatientRuleSettings, patient.id)
        assert settings is not None and settings.hypercapnic
