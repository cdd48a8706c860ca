"""Every mapper's output is proven valid FHIR once, so readings are not validated one by one."""

from __future__ import annotations

from datetime import timedelta

import pytest
from telekol.fhir.codes import MEASUREMENT_TYPES
from telekol.fhir.questionnaire import QUESTIONNAIRES
from telekol.fhir.validation import InvalidResource
from telekol.server.ingest import mapper_check, observation_rows, questionnaires
from telekol.server.ingest.batch import IngestService

from tests.test_alert_rules_ingest import answers, measure
from tests.test_ingest import NOW


def test_every_measurement_type_colour_and_questionnaire_is_among_the_samples() -> None:
    observations = [resource for _, resource in mapper_check.observation_samples()]
    codes = {r["code"]["coding"][0]["code"] for r in observations}
    assert codes == {t.codings[0].code for t in MEASUREMENT_TYPES.values()}
    colours = {r["interpretation"][0]["coding"][0]["code"] if "interpretation" in r else None
               for r in observations}
    assert colours == {None, "N", "L", "LL", "H", "HH"}
    responses = [r for _, r in mapper_check.response_samples()
                 if r["resourceType"] == "QuestionnaireResponse"]
    assert {r["questionnaire"] for r in responses} == {q.url for q in QUESTIONNAIRES.values()}


def test_every_sample_is_valid_fhir() -> None:
    assert mapper_check.check_all() > 400


@pytest.mark.parametrize("breakage", [
    {"subject": "Patient/p1"},  # a string where a Reference belongs
    {"effectiveDateTime": "yesterday"},
    {"valueQuantity": {"value": "ninety"}},
])
def test_a_mapper_that_makes_invalid_fhir_is_caught(monkeypatch, breakage) -> None:
    made = observation_rows.observation_resource
    monkeypatch.setattr(mapper_check, "observation_resource",
                        lambda *args: {**made(*args), **breakage})
    with pytest.raises(InvalidResource, match="mapper output for"):
        mapper_check.check_all()


def test_the_gateway_path_runs_no_fhir_validation_per_reading(engine, demo, monkeypatch) -> None:
    calls = []
    monkeypatch.setattr(observation_rows, "validate_resource", calls.append)
    monkeypatch.setattr(questionnaires, "validate_resource", calls.append)
    device = demo["devices"][0]["device_id"]
    result = IngestService(engine, clock=lambda: NOW).ingest([
        measure(device, "m1", NOW - timedelta(minutes=2), spo2=95, pulse=70),
        answers(device, "a1", "cat", NOW - timedelta(minutes=1))])
    assert [s["result"] for _, s in result.statuses] == ["accepted", "accepted"]
    assert calls == []
