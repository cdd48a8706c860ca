"""Alert reasons in the reader's language, rendered from what each rule found."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from flask import Flask
from flask_babel import Babel, force_locale
from telekol.clinician_ui import TRANSLATIONS_DIR
from telekol.server.alerts.rules import PatientContext, Reading, evaluate, merge_parameters
from telekol.server.alerts.rules.parameters import default_parameters
from telekol.server.alerts.triage import ThresholdSet
from telekol.server.web.alert_words import alert_words, reason_words
from telekol.server.web.words import quantity

NOW = datetime(2026, 12, 2, 9, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def app() -> Flask:
    app = Flask(__name__)
    Babel(app, default_translation_directories=str(TRANSLATIONS_DIR))
    return app


def words(app: Flask, locale: str, rule: str, details: dict, severity: str = "yellow") -> str:
    with app.test_request_context(), force_locale(locale):
        return reason_words(rule, details, severity, fallback="FALLBACK")


def fired(reading: Reading, recent: tuple[Reading, ...] = (), **limits: float) -> dict:
    ctx = PatientContext("p", NOW, recent=recent, thresholds={
        "spo2": ThresholdSet("spo2", 88, 92, set_by="Læge Ole Berg", set_at=NOW)},
        parameters=merge_parameters(default_parameters(), limits))
    return {r.rule: r for r in evaluate(reading, ctx)}


def spo2(value: float, hours_ago: float = 0, late: bool = False) -> Reading:
    at = NOW - timedelta(hours=hours_ago)
    return Reading("spo2", value, "%", at, NOW if late else at, late=late)


@pytest.mark.parametrize(("locale", "expected"), [
    ("da", "SpO2 86 % er under den røde grænse 88 % (sat af Læge Ole Berg 02.12.2026)"),
    ("en", "SpO2 86 % is below the red limit 88 % (set by Læge Ole Berg on 02.12.2026)"),
])
def test_a_threshold_alert_names_value_limit_and_who_set_it(app, locale, expected) -> None:
    request = fired(spo2(86))["threshold:spo2"]
    assert words(app, locale, request.rule, request.details, request.severity) == expected


@pytest.mark.parametrize(("locale", "expected"), [
    ("da", "FEV1 1,10 L"), ("en", "FEV1 1.10 L"),
])
def test_danish_has_a_decimal_comma(app, locale, expected) -> None:
    history = tuple(Reading("fev1", v, "L", NOW - timedelta(days=d), NOW - timedelta(days=d))
                    for d, v in ((1, 1.5), (2, 1.52), (3, 1.48), (4, 1.5), (5, 1.51)))
    request = fired(Reading("fev1", 1.1, "L", NOW, NOW), history)["baseline:fev1"]
    assert words(app, locale, request.rule, request.details).startswith(expected)


@pytest.mark.parametrize(("locale", "unit"), [("da", "78 slag/min"), ("en", "78 beats/min")])
def test_units_are_in_the_readers_language(app, locale, unit) -> None:
    with app.test_request_context(), force_locale(locale):
        assert quantity("pulse", 78) == unit


def test_symptoms_are_named_in_danish(app) -> None:
    reading = Reading("more_breathless", 1, "", NOW, NOW)
    recent = (Reading("more_sputum", 1, "", NOW - timedelta(hours=1), NOW),)
    request = fired(reading, recent)["symptoms"]
    text = words(app, "da", request.rule, request.details, request.severity)
    assert "mere åndenød end normalt" in text and "mere slim end normalt" in text
    assert request.severity == "red" and "2 af 3 kardinalsymptomer" in text


def test_a_reading_uploaded_late_says_when_it_was_measured(app) -> None:
    request = fired(spo2(86, hours_ago=5, late=True))["threshold:spo2"]
    text = words(app, "da", request.rule, request.details, request.severity)
    assert text.endswith("(målt 02.12.2026 05:00, sendt senere)")


def test_an_unknown_rule_or_old_details_fall_back_to_the_stored_reason(app) -> None:
    assert words(app, "da", "something:new", {}) == "FALLBACK"
    assert words(app, "da", "threshold:spo2", {"value": 86}) == "FALLBACK"


def test_a_repeat_says_why_it_is_red_and_what_the_latest_reading_was(app) -> None:
    red, yellow = fired(spo2(86))["threshold:spo2"], fired(spo2(90))["threshold:spo2"]
    alert = {"rule": red.rule, "severity": "red", "severity_details": red.details,
             "details": yellow.details, "reason": yellow.reason}
    with app.test_request_context(), force_locale("da"):
        found = alert_words(alert)
    assert found["deciding"].startswith("SpO2 86 % er under den røde grænse 88 %")
    assert found["latest"] == "SpO2 90 % er under den gule grænse 92 %"
    assert found["severity_word"] == "Rød"
