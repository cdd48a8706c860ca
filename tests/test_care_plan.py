"""The shared care plan: content validation, summaries, versions, who may change what, and
the rules' live tables following the plan."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from sqlmodel import Session, select
from telekol.server.care import plan as care_plan
from telekol.server.care.plan import NotAllowed, StaleVersion
from telekol.server.care.plan_content import (
    InvalidCarePlan,
    ScheduleRow,
    as_json,
    live_rows,
    parse_content,
    summarize,
)
from telekol.server.models import (
    CarePlanVersion,
    MeasurementSchedule,
    PatientRuleSettings,
    Threshold,
    User,
)

PLAN: dict[str, Any] = {
    "schedules": [
        {"code": "spo2", "kind": "measurement", "times": ["17:00", "09:00"], "to_day": 13},
        {"code": "spo2", "kind": "measurement", "times": ["12:00"], "from_day": 14},
        {"code": "cat", "kind": "questionnaire", "times": ["10:00"], "weekdays": [0]},
    ],
    "thresholds": {"spo2": {"red_low": 88, "yellow_low": 92},
                   "pulse": {"yellow_high": 110, "red_high": 130}},
    "relative": {"spo2_baseline_drop_points": 4, "weight_gain_kg": 1.5},
    "self_care": {"green": "Fortsæt", "yellow": "Mål igen", "red": "Ring"},
    "goals": ["Gå en tur", ""],
    "notes": "Noter",
}


def plan(**changes: Any) -> dict[str, Any]:
    data = copy.deepcopy(PLAN)
    data.update(changes)
    return data


def test_valid_content_is_normalised() -> None:
    content = parse_content(PLAN)
    stored = as_json(content)
    assert stored["schedules"][0]["times"] == ["09:00", "17:00"]
    assert stored["schedules"][0]["weekdays"] == [] and stored["schedules"][0]["every_days"] == 1
    assert stored["thresholds"]["spo2"] == {"red_low": 88.0, "yellow_low": 92.0,
                                            "yellow_high": None, "red_high": None}
    assert list(stored["thresholds"]) == ["spo2", "pulse"]
    assert stored["goals"] == ["Gå en tur"]


@pytest.mark.parametrize(("content", "message"), [
    (plan(thresholds={"spo2": {"red_low": 92, "yellow_low": 88}}),
     "thresholds: spo2: red_low 92 must be below yellow_low 88"),
    (plan(thresholds={"spo2": {"red_low": 40}}),
     "red_low 40 is outside the plausible range 50-100 of spo2"),
    (plan(thresholds={"pulse": {}}), "pulse: at least one limit must be set"),
    (plan(thresholds={"glucose": {"red_low": 3}}), "no thresholds for glucose"),
    (plan(thresholds={"spo2": {"red_low": "low"}}), "thresholds.spo2.red_low: Input should be"),
    (plan(relative={"made_up": 3}), "unknown rule parameter(s): made_up"),
    (plan(relative={"weight_gain_kg": -1}), "must not be negative: weight_gain_kg"),
    (plan(schedules=[{"code": "spo2", "times": ["9:00"]}]), "times must be HH:MM"),
    (plan(schedules=[{"code": "spo2", "times": []}]), "schedules.0.times: List should have"),
    (plan(schedules=[{"code": "glucose", "times": ["09:00"]}]),
     "measurement code 'glucose' is not one of"),
    (plan(schedules=[{"code": "spo2", "kind": "questionnaire", "times": ["09:00"]}]),
     "questionnaire code 'spo2' is not one of: cat, symptoms"),
    (plan(schedules=[{"code": "spo2", "times": ["09:00"], "weekdays": [7]}]),
     "weekdays must be distinct numbers 0 (Monday) to 6 (Sunday)"),
    (plan(schedules=[{"code": "spo2", "times": ["09:00"], "every_days": 0}]),
     "schedules.0.every_days: Input should be greater than or equal to 1"),
    (plan(schedules=[{"code": "spo2", "times": ["09:00"], "from_day": 14, "to_day": 13}]),
     "to_day 13 is before from_day 14"),
    (plan(colour="blue"), "colour: Extra inputs are not permitted"),
    ([], "content must be a JSON object"),
])
def test_invalid_content_is_refused_with_a_clear_message(content: Any, message: str) -> None:
    with pytest.raises(InvalidCarePlan) as refused:
        parse_content(content)
    assert any(message in error for error in refused.value.errors), refused.value.errors


@pytest.mark.parametrize(("change", "summary"), [
    ({"thresholds": {"spo2": {"red_low": 88, "yellow_low": 91},
                     "pulse": {"yellow_high": 110, "red_high": 130}}},
     "spo2 yellow_low 92 → 91"),
    ({"thresholds": {"spo2": {"red_low": 88, "yellow_low": 92}}},
     "pulse yellow_high 110 → –, red_high 130 → –"),
    ({"relative": {"spo2_baseline_drop_points": 4}}, "weight_gain_kg 1.5 → –"),
    ({"goals": ["Noget andet"], "notes": "Nyt"}, "goals changed; notes changed"),
    ({"self_care": {"green": "x", "yellow": "y", "red": "z"}}, "self-care changed"),
    ({}, "no changes"),
])
def test_the_summary_names_what_changed(change: dict[str, Any], summary: str) -> None:
    assert summarize(parse_content(PLAN), parse_content(plan(**change))) == summary


def test_the_rules_rows_are_one_schedule_row_per_code_and_time() -> None:
    rows = live_rows(parse_content(PLAN))
    assert rows.schedules == (
        ScheduleRow("spo2", "measurement", "09:00", (), 1, 0, 13),
        ScheduleRow("spo2", "measurement", "17:00", (), 1, 0, 13),
        ScheduleRow("spo2", "measurement", "12:00", (), 1, 14, None),
        ScheduleRow("cat", "questionnaire", "10:00", (0,), 1, 0, None))
    assert rows.overrides == {"spo2_baseline_drop_points": 4.0, "weight_gain_kg": 1.5}
    assert rows.thresholds["pulse"].red_high == 130


# ---- the service, on the demo database ----

def user(session: Session, username: str) -> User:
    found = session.exec(select(User).where(User.username == username)).first()
    assert found is not None
    return found


def patient_id(demo: dict, cpr: str = "1503459995") -> str:  # Poul: muni-aalby + gp-torvet
    return next(p["id"] for p in demo["patients"] if p["cpr"] == cpr)


def current(session: Session, pid: str) -> dict[str, Any]:
    row = care_plan.current_version(session, pid)
    assert row is not None
    return copy.deepcopy(row.content)


def test_every_demo_patient_has_a_first_version_matching_the_live_limits(engine, demo) -> None:
    with Session(engine) as session:
        for patient in demo["patients"]:
            row = care_plan.current_version(session, patient["id"])
            assert row is not None and row.version == 1 and row.changed_by_name
            limits = session.exec(select(Threshold).where(
                Threshold.patient_id == patient["id"])).all()
            planned = row.content["thresholds"]
            assert {t.measurement: [t.red_low, t.yellow_low] for t in limits} == {
                code: [v["red_low"], v["yellow_low"]] for code, v in planned.items()}
            assert row.content["thresholds"]["spo2"]["red_low"] == 88  # CONTRACT section 6
            assert row.content["thresholds"]["spo2"]["yellow_low"] == 92
            # The schedules the rules follow are the plan's own: no default for everyone.
            own = session.exec(select(MeasurementSchedule).where(
                MeasurementSchedule.patient_id == patient["id"])).all()
            assert sorted((s.code, s.due_local, s.from_day) for s in own) == sorted(
                (e["code"], t, e["from_day"]) for e in row.content["schedules"]
                for t in e["times"])
        assert session.exec(select(MeasurementSchedule).where(
            MeasurementSchedule.patient_id == None)).all() == []  # noqa: E711


def test_the_gp_saves_a_version_and_the_rules_tables_follow(engine, demo) -> None:
    pid = patient_id(demo)
    with Session(engine) as session:
        gp = user(session, "gp.torvet")
        row = care_plan.save(session, gp, pid, 1, PLAN)
        session.commit()
        assert row.version == 2 and row.changed_by_name == gp.display_name
        assert row.changed_by_org == "gp-torvet"
        assert "pulse red_low 41 → –, yellow_low 50 → –, yellow_high 100 → 110" in row.summary
        assert "schedules changed" in row.summary
        limits = {t.measurement: t for t in session.exec(select(Threshold).where(
            Threshold.patient_id == pid))}
        assert (limits["pulse"].yellow_high, limits["pulse"].red_high) == (110, 130)
        assert limits["pulse"].set_by == gp.display_name
        assert limits["pulse"].source == "care plan version 2"
        assert limits["spo2"].source != "care plan version 2"  # unchanged: who set it stays
        settings = session.get(PatientRuleSettings, pid)
        assert settings is not None and settings.overrides == {
            "spo2_baseline_drop_points": 4.0, "weight_gain_kg": 1.5}
        schedule = session.exec(select(MeasurementSchedule).where(
            MeasurementSchedule.patient_id == pid)).all()
        assert sorted((s.code, s.due_local, s.from_day, s.to_day) for s in schedule) == [
            ("cat", "10:00", 0, None), ("spo2", "09:00", 0, 13), ("spo2", "12:00", 14, None),
            ("spo2", "17:00", 0, 13)]


def test_a_removed_threshold_and_schedule_leave_the_live_tables(engine, demo) -> None:
    pid = patient_id(demo)
    with Session(engine) as session:
        gp = user(session, "gp.torvet")
        care_plan.save(session, gp, pid, 1, PLAN)
        care_plan.save(session, gp, pid, 2, plan(schedules=[], thresholds={
            "spo2": {"red_low": 88, "yellow_low": 92}}))
        session.commit()
        assert [t.measurement for t in session.exec(select(Threshold).where(
            Threshold.patient_id == pid))] == ["spo2"]
        assert session.exec(select(MeasurementSchedule).where(
            MeasurementSchedule.patient_id == pid)).all() == []


def test_versions_are_kept_unchanged(engine, demo) -> None:
    pid = patient_id(demo)
    with Session(engine) as session:
        first = current(session, pid)
        care_plan.save(session, user(session, "gp.torvet"), pid, 1, plan(notes="Ny note"))
        session.commit()
        assert [v.version for v in care_plan.history(session, pid)] == [2, 1]
        old = care_plan.version_of(session, pid, 1)
        assert old is not None and old.content == first


def test_a_change_made_from_an_old_version_is_refused(engine, demo) -> None:
    pid = patient_id(demo)
    with Session(engine) as session:
        nurse = user(session, "nurse.aalby")
        base = current(session, pid)
        care_plan.save(session, nurse, pid, 1, {**base, "notes": "Først"})
        with pytest.raises(StaleVersion) as stale:
            care_plan.save(session, nurse, pid, 1, {**base, "notes": "Bagefter"})
        assert stale.value.current is not None and stale.value.current.version == 2


def test_saving_the_same_content_again_is_refused(engine, demo) -> None:
    pid = patient_id(demo)
    with Session(engine) as session, pytest.raises(care_plan.CarePlanError,
                                                   match="the same as the current version"):
        care_plan.save(session, user(session, "gp.torvet"), pid, 1, current(session, pid))


@pytest.mark.parametrize(("username", "section", "allowed"), [
    ("gp.torvet", "thresholds", True),  # treatment-responsible GP
    ("gp.torvet", "notes", True),
    ("nurse.aalby", "thresholds", False),  # monitoring, not treatment
    ("nurse.aalby", "relative", False),
    ("nurse.aalby", "notes", True),
    ("nurse.aalby", "schedules", True),
    ("nurse.aalby", "self_care", True),
])
def test_who_may_change_which_section(engine, demo, username: str, section: str,
                                      allowed: bool) -> None:
    pid = patient_id(demo)
    with Session(engine) as session:
        content = current(session, pid)
        content[section] = PLAN[section]
        actor = user(session, username)
        if allowed:
            assert care_plan.save(session, actor, pid, 1, content).version == 2
        else:
            with pytest.raises(NotAllowed):
                care_plan.save(session, actor, pid, 1, content)
            assert care_plan.current_version(session, pid).version == 1  # type: ignore[union-attr]


def test_the_hospital_specialist_on_the_team_may_not_edit_karens_plan(engine, demo) -> None:
    karen = patient_id(demo, "0101419996")  # hospital is a specialist on her team
    with Session(engine) as session:
        content = current(session, karen)
        with pytest.raises(NotAllowed):
            care_plan.save(session, user(session, "doctor.hospital"), karen, 1,
                           {**content, "notes": "x"})


def test_a_new_version_event_goes_to_the_team_and_the_patient(engine, demo) -> None:
    pid = patient_id(demo)
    with Session(engine) as session:
        row = care_plan.save(session, user(session, "nurse.aalby"), pid, 1,
                             {**current(session, pid), "notes": "x"})
        event = care_plan.plan_event(session, row)
    assert event["type"] == "care_plan"
    assert event["rooms"] == ["org:gp-torvet", "org:muni-aalby", f"patient:{pid}"]
    assert event["data"]["version"] == 2 and "content" not in event["data"]


def test_the_same_version_cannot_be_stored_twice(engine, demo) -> None:
    from sqlalchemy.exc import IntegrityError

    pid = patient_id(demo)
    with Session(engine) as session:
        episode_id = care_plan.current_version(session, pid).episode_id  # type: ignore[union-attr]
        session.add(CarePlanVersion(episode_id=episode_id, patient_id=pid, version=1,
                                    content={}))
        with pytest.raises(IntegrityError):
            session.flush()


@pytest.mark.parametrize(("lang", "expected"), [
    ("da", "Puls: gul over 100 slag/min → 110 slag/min"),
    ("en", "Pulse: yellow above 100 beats/min → 110 beats/min"),
])
def test_version_notes_are_words_in_the_readers_language(lang: str, expected: str) -> None:
    from flask import Flask
    from flask_babel import Babel, force_locale
    from telekol.clinician_ui import TRANSLATIONS_DIR
    from telekol.clinician_ui.plan_notes import changes

    app = Flask(__name__)
    Babel(app, default_translation_directories=str(TRANSLATIONS_DIR))
    old = {"thresholds": {"pulse": {"yellow_high": 100}}, "relative": {}}
    new = {"thresholds": {"pulse": {"yellow_high": 110}}, "relative": {"weight_gain_kg": 2}}
    with app.test_request_context(), force_locale(lang):
        text = changes(old, new)
    assert text.startswith(expected)
    assert "weight_gain_kg" not in text and "yellow_high" not in text
