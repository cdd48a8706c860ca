"""Ingest runs the alert rules with history, per-patient settings and one open alert per rule."""

from __future__ import annotations

import json
from datetime import datetime, timedelta

import pytest
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select
from telekol.server.alerts.book import AlertBook
from telekol.server.alerts.context_cache import ContextCache
from telekol.server.device_messages.measurements import parse_measurements
from telekol.server.device_messages.questionnaire_responses import parse_questionnaire_responses
from telekol.server.ingest.batch import IngestService, ParsedDelivery
from telekol.server.models import Alert, PatientRuleSettings

from tests.test_ingest import NOW
from tests.test_questionnaire_payload import CAT, DIARY

CONTRACT_KEYS = {"id", "patient", "severity", "status", "reason", "observation", "created_at"}


def measure(device: str, msg_id: str, at: datetime, received: datetime | None = None,
            **values: float) -> ParsedDelivery:
    """Return a parsed delivery of one measurement object taken at `at`."""
    received = received or at + timedelta(minutes=1)
    body = {"msg_id": msg_id, "taken_at": at.isoformat(),
            "readings": [{"code": code, "value": value} for code, value in values.items()]}
    payload = json.dumps(body).encode()
    return ParsedDelivery(f"telekol/v1/devices/{device}/measurements", device, received,
                          parse_measurements(payload, received), payload)


def answers(device: str, msg_id: str, kind: str, at: datetime, **changed: object,
            ) -> ParsedDelivery:
    """Return a parsed delivery of one questionnaire response taken at `at`."""
    received = at + timedelta(minutes=1)
    body = {"msg_id": msg_id, "taken_at": at.isoformat(), "questionnaire": kind,
            "answers": {**(CAT if kind == "cat" else DIARY), **changed}}
    payload = json.dumps(body).encode()
    return ParsedDelivery(f"telekol/v1/devices/{device}/questionnaire-responses", device,
                          received, parse_questionnaire_responses(payload, received), payload)


def ingest(engine, *deliveries: ParsedDelivery, now: datetime = NOW) -> list[dict]:
    """Ingest at `now` and return the alert events' data."""
    result = IngestService(engine, clock=lambda: now).ingest(list(deliveries))
    assert all(s["result"] == "accepted" for _, s in result.statuses), result.statuses
    return [e["data"] for e in result.events if e["type"] == "alert"]


def alerts(engine, rule: str | None = None) -> list[Alert]:
    """Return the stored alerts (of one rule), oldest first."""
    with Session(engine) as session:
        query = select(Alert).order_by(Alert.id)  # type: ignore[arg-type]
        return [a for a in session.exec(query) if rule is None or a.rule == rule]


def settings(engine, patient_id: str, hypercapnic: bool = False, **overrides: float) -> None:
    """Store a clinician's rule settings for the patient."""
    with Session(engine) as session:
        session.add(PatientRuleSettings(patient_id=patient_id, hypercapnic=hypercapnic,
                                        overrides=overrides, set_by="Dr. X",
                                        source="Dr. X, 3 Nov 2026"))
        session.commit()


@pytest.fixture
def hub(demo) -> tuple[str, str]:
    """Return (device id, patient id) of the first demo patient (SpO2 red < 88, yellow < 92)."""
    return demo["devices"][0]["device_id"], demo["devices"][0]["patient"]


def test_a_repeated_red_updates_the_open_alert(engine, hub) -> None:
    device, _ = hub
    [first] = ingest(engine, measure(device, "a", NOW - timedelta(minutes=30), spo2=85),
                     now=NOW - timedelta(minutes=29))
    [second] = ingest(engine, measure(device, "b", NOW - timedelta(minutes=2), spo2=84))
    [stored] = alerts(engine)
    assert (stored.count, stored.severity, stored.rule) == (2, "red", "threshold:spo2")
    assert second["id"] == first["id"] == stored.id and second["count"] == 2
    assert "SpO2 84 %" in second["reason"] and second["details"]["value"] == 84
    assert stored.last_observation_id == second["observation"] != stored.observation_id
    assert stored.updated_at == NOW and stored.created_at == NOW - timedelta(minutes=29)
    assert set(second) >= CONTRACT_KEYS and set(second["patient"]) == {"id", "display"}


def test_two_reds_in_one_batch_make_one_alert_counted_twice(engine, hub) -> None:
    device, _ = hub
    events = ingest(engine, measure(device, "a", NOW - timedelta(minutes=3), spo2=85),
                    measure(device, "b", NOW - timedelta(minutes=2), spo2=86))
    [stored] = alerts(engine)
    assert stored.count == 2 and "86" in stored.reason
    assert [e["id"] for e in events] == [stored.id] and events[0]["count"] == 2


def test_yellow_then_red_makes_the_alert_red_and_red_then_yellow_keeps_it_red(engine,
                                                                               hub) -> None:
    device, _ = hub
    ingest(engine, measure(device, "a", NOW - timedelta(minutes=30), spo2=90),
           now=NOW - timedelta(minutes=29))
    [red] = ingest(engine, measure(device, "b", NOW - timedelta(minutes=5), spo2=85))
    assert red["severity"] == "red"
    [still] = ingest(engine, measure(device, "c", NOW - timedelta(minutes=2), spo2=90))
    [stored] = alerts(engine)
    assert (still["severity"], stored.severity, stored.count) == ("red", "red", 3)
    assert stored.reason.startswith("SpO2 90 % is below the yellow limit")


def test_after_resolving_a_new_red_opens_a_new_alert(engine, hub) -> None:
    device, _ = hub
    ingest(engine, measure(device, "a", NOW - timedelta(minutes=30), spo2=85))
    with Session(engine) as session:
        [old] = session.exec(select(Alert)).all()
        old.status = "resolved"
        session.add(old)
        session.commit()
    [new] = ingest(engine, measure(device, "b", NOW - timedelta(minutes=2), spo2=85))
    assert [(a.status, a.count) for a in alerts(engine)] == [("resolved", 1), ("open", 1)]
    assert new["id"] == alerts(engine)[1].id


def test_an_spo2_drop_since_yesterday_uses_history_from_earlier_batches(engine, hub) -> None:
    device, _ = hub
    yesterday = NOW - timedelta(days=1)
    assert ingest(engine, measure(device, "y", yesterday, spo2=97),
                  now=yesterday + timedelta(minutes=1)) == []
    events = ingest(engine, measure(device, "t", NOW - timedelta(minutes=2), spo2=92))
    [drop] = [e for e in events if e["rule"] == "baseline:spo2-drop"]
    assert drop["severity"] == "yellow" and "fell 5 points since yesterday" in drop["reason"]


def test_a_per_patient_override_changes_the_outcome(engine, hub) -> None:
    device, patient = hub
    settings(engine, patient, spo2_daily_drop_points=6)
    yesterday = NOW - timedelta(days=1)
    ingest(engine, measure(device, "y", yesterday, spo2=97), now=yesterday + timedelta(minutes=1))
    events = ingest(engine, measure(device, "t", NOW - timedelta(minutes=2), spo2=92))
    assert [e["rule"] for e in events] == []


def test_two_readings_of_one_batch_see_each_other(engine, hub) -> None:
    device, _ = hub
    yesterday = NOW - timedelta(days=1)
    events = ingest(engine, measure(device, "y", yesterday, received=NOW, spo2=97),
                    measure(device, "t", NOW - timedelta(minutes=2), spo2=92))
    assert "baseline:spo2-drop" in {e["rule"] for e in events}


def test_a_symptom_diary_with_two_cardinal_symptoms_is_red(engine, hub) -> None:
    device, _ = hub
    [alert] = ingest(engine, answers(device, "d1", "copd-symptoms", NOW - timedelta(minutes=5)))
    assert (alert["rule"], alert["severity"], alert["count"]) == ("symptoms", "red", 1)
    assert "more breathless than usual, changed sputum colour" in alert["reason"]
    assert "2 of 3 cardinal symptoms" in alert["reason"]


def test_one_cardinal_symptom_is_yellow_once_reported_on_two_days(engine, hub) -> None:
    device, _ = hub
    yesterday = NOW - timedelta(days=1)
    one = {"more_breathless": True, "sputum_colour_changed": False}
    # A one-day blip waits: nothing yet (symptom_persist_hours).
    assert ingest(engine, answers(device, "d1", "copd-symptoms", yesterday, **one),
                  now=yesterday + timedelta(minutes=2)) == []
    [alert] = ingest(engine, answers(device, "d2", "copd-symptoms", NOW - timedelta(minutes=5),
                                     more_breathless=False, more_sputum=True,
                                     sputum_colour_changed=False))
    # The later "no" replaces the earlier "yes": one cardinal symptom, yellow on the second day.
    assert (alert["rule"], alert["severity"], alert["count"]) == ("symptoms", "yellow", 1)
    assert alert["details"]["earlier_taken_at"] == yesterday.isoformat()
    [red] = ingest(engine, answers(device, "d3", "copd-symptoms", NOW - timedelta(minutes=1),
                                   more_breathless=True, more_sputum=True,
                                   sputum_colour_changed=False), now=NOW)
    assert (red["severity"], red["count"], red["id"]) == ("red", 2, alert["id"])


def test_a_cat_rise_of_two_raises_cat_mcid(engine, hub) -> None:
    device, _ = hub
    earlier = NOW - timedelta(days=2)
    assert ingest(engine, answers(device, "c1", "cat", earlier), now=earlier) == []
    [alert] = ingest(engine, answers(device, "c2", "cat", NOW - timedelta(minutes=5), cough=3))
    assert (alert["rule"], alert["severity"]) == ("cat-mcid", "yellow")
    assert alert["reason"].startswith("CAT rose 2 points (18 → 20)")


def test_a_cat_override_raises_the_mcid_for_one_patient(engine, hub) -> None:
    device, patient = hub
    settings(engine, patient, cat_mcid=3)
    earlier = NOW - timedelta(days=2)
    ingest(engine, answers(device, "c1", "cat", earlier), now=earlier)
    assert ingest(engine, answers(device, "c2", "cat", NOW - timedelta(minutes=5), cough=3)) == []


@pytest.mark.parametrize(("hypercapnic", "scale", "score", "severity"),
                         [(False, 1, 7, "red"), (True, 2, 5, "yellow")])
def test_hypercapnic_patients_get_news2_spo2_scale_2(engine, hub, hypercapnic, scale, score,
                                                      severity) -> None:
    device, patient = hub
    if hypercapnic:
        settings(engine, patient, hypercapnic=True)
    # SpO2 86 % scores 3 on Scale 1 and 1 on Scale 2; pulse 115 and respiration 22 score 2 each.
    events = ingest(engine, measure(device, "m", NOW - timedelta(minutes=2), spo2=86,
                                    pulse=115, resp_rate=22))
    [news2] = [e for e in events if e["rule"] == "news2"]
    assert (news2["details"]["scale"], news2["details"]["score"], news2["severity"]) == (
        scale, score, severity)
    assert f"SpO2 scale {scale}" in news2["reason"]


def test_a_single_parameter_news2_3_is_left_to_the_patients_own_limits(engine, hub) -> None:
    device, _ = hub
    # SpO2 91 % scores 3 on Scale 1 alone, but the care plan says 88-91 % is yellow.
    events = ingest(engine, measure(device, "m", NOW - timedelta(minutes=2), spo2=91, pulse=80))
    assert [e["rule"] for e in events] == ["threshold:spo2"]


def test_a_reading_uploaded_late_is_evaluated_and_marked_late(engine, hub) -> None:
    device, _ = hub
    taken = NOW - timedelta(hours=3)
    [alert] = ingest(engine, measure(device, "old", taken, received=NOW, spo2=85))
    assert alert["rule"] == "threshold:spo2" and alert["details"]["late"] is True
    assert alert["reason"].endswith("uploaded late)")
    [fresh] = ingest(engine, measure(device, "new", NOW - timedelta(minutes=1), received=NOW,
                                     spo2=85))
    assert fresh["details"]["late"] is False and "late" not in fresh["reason"]


def test_a_second_gateway_opening_the_same_alert_first_turns_ours_into_an_update(
        engine, hub, monkeypatch) -> None:
    device, _ = hub
    other = IngestService(engine, clock=lambda: NOW)
    ours = IngestService(engine, clock=lambda: NOW, cache=ContextCache())
    checkout = ContextCache.checkout

    def late_checkout(self, *args, **kwargs):  # another gateway commits the alert meanwhile
        found = checkout(self, *args, **kwargs)
        other.ingest([measure(device, "theirs", NOW - timedelta(minutes=3), spo2=85)])
        return found

    ours.ingest([measure(device, "warm-up", NOW - timedelta(minutes=9), spo2=95)])
    monkeypatch.setattr(ContextCache, "checkout", late_checkout)
    result = ours.ingest([measure(device, "ours", NOW - timedelta(minutes=2), spo2=84)])
    assert [s["result"] for _, s in result.statuses] == ["accepted"]
    [stored] = alerts(engine)
    assert stored.count == 2 and "84" in stored.reason


def test_an_alert_opened_between_our_read_and_our_insert_reruns_the_batch_once(
        engine, hub, monkeypatch) -> None:
    device, patient = hub
    load, loads = AlertBook.load, []

    def load_then_race(self, patient_ids):  # the same rule's alert appears after our read
        load(self, patient_ids)
        loads.append(1)
        if len(loads) == 1:
            self.session.add(Alert(patient_id=patient, rule="threshold:spo2", severity="red",
                                   reason="theirs", created_at=NOW, updated_at=NOW))
            self.session.flush()

    monkeypatch.setattr(AlertBook, "load", load_then_race)
    result = IngestService(engine, clock=lambda: NOW).ingest(
        [measure(device, "ours", NOW - timedelta(minutes=2), spo2=84)])
    assert [s["result"] for _, s in result.statuses] == ["accepted"] and len(loads) == 2
    [stored] = alerts(engine)
    assert (stored.count, stored.reason[:8]) == (1, "SpO2 84 ")


def test_the_database_refuses_a_second_unresolved_alert_per_patient_and_rule(engine,
                                                                              hub) -> None:
    _, patient = hub
    row = {"patient_id": patient, "rule": "threshold:spo2", "severity": "red", "reason": "x",
           "created_at": NOW, "updated_at": NOW}
    with Session(engine) as session:
        session.add(Alert(**row, status="resolved"))
        session.add(Alert(**row, status="resolved"))
        session.add(Alert(**row))
        session.commit()
        session.add(Alert(**row, status="acknowledged"))
        with pytest.raises(IntegrityError):
            session.commit()
