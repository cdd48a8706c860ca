"""The COPD programme file: valid care-plan content, every number with its source."""

from __future__ import annotations

import pytest
from telekol.server.care_plan_content import parse_content
from telekol.server.programme import UnknownProgramme, programme


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
