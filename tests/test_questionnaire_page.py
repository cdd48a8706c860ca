"""The patient's questionnaire page: big answer buttons, and what happens next in plain words."""

from __future__ import annotations

import re
from types import SimpleNamespace
from typing import Any

import pytest
from telekol.clinician_ui import patient_views

from tests.test_questionnaire_payload import CAT, DIARY
from tests.test_web import app, csrf_token, log_in  # noqa: F401  (the `app` fixture)

AALBY = {"name": "Hjemmesygeplejen, Aalby Kommune", "phone": "+4572000021"}


def page_of(app, path: str) -> str:  # noqa: F811
    client = app.test_client()
    log_in(client, "patient.karen")
    return client.get(path).get_data(as_text=True)


@pytest.mark.parametrize(("kind", "items", "values"), [
    ("cat", 8, ["0", "1", "2", "3", "4", "5"]), ("copd-symptoms", 4, ["yes", "no"])])
def test_every_answer_is_a_labelled_radio_button_with_a_face_to_tap(
        app, kind: str, items: int, values: list[str]) -> None:  # noqa: F811
    page = page_of(app, f"/questionnaire/{kind}?lang=da")
    answers = re.findall(r'<label class="answer"><input type="radio" name="(\w+)" '
                         r'value="(\w+)" required\s*>\s*<span class="face">', page)
    assert len(answers) == items * len(values)
    assert [value for _, value in answers[:len(values)]] == values
    assert page.count('<fieldset class="question"') == items and "patient.css" in page


def test_the_scales_ends_are_read_out_with_their_number(app) -> None:  # noqa: F811
    page = page_of(app, "/questionnaire/cat?lang=da")
    assert '0<span class="sr-only"> = Slet ikke</span>' in page
    assert '5<span class="sr-only"> = Hele tiden</span>' in page


class FakeService:
    """Stands in for QuestionnaireService: a stored submission with a chosen severity and
    contact (`severity` and `monitoring` are what the real service reports)."""

    severity: str | None = None
    monitoring: dict[str, Any] | None = None

    def __init__(self, _engine: object) -> None:
        pass

    def submit(self, _patient_id: str, kind: str, _answers: dict[str, Any],
               *_more: object, **_options: object) -> SimpleNamespace:
        return SimpleNamespace(kind=kind, total=24 if kind == "cat" else 2,
                               observation_id="obs-1", events=[],
                               event={"type": "observation", "rooms": [], "data": {}},
                               severity=self.severity, monitoring=self.monitoring)


def submitted(app, monkeypatch, severity: str | None, monitoring: dict[str, Any] | None,  # noqa: F811
              kind: str = "copd-symptoms") -> str:
    """Send the form to a fake service and return the page that answers it, in Danish."""
    monkeypatch.setattr(FakeService, "severity", severity)
    monkeypatch.setattr(FakeService, "monitoring", monitoring)
    monkeypatch.setattr(patient_views, "QuestionnaireService", FakeService)
    client = app.test_client()
    log_in(client, "patient.karen")
    token = csrf_token(client.get(f"/questionnaire/{kind}").get_data(as_text=True))
    answers = ({k: str(v) for k, v in CAT.items()} if kind == "cat" else
               {k: "yes" if v else "no" for k, v in DIARY.items()})
    response = client.post(f"/questionnaire/{kind}?lang=da",
                           data={**answers, "csrf_token": token})
    assert response.status_code == 200
    return response.get_data(as_text=True)


def words(page: str) -> str:
    """Return the next steps as text: tags dropped, spaces collapsed."""
    part = page[page.index('id="next-steps"'):]
    part = part[part.index(">") + 1:part.index('<ul class="links">')]
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", part)).strip().replace(" .", ".")


@pytest.mark.parametrize(("severity", "monitoring", "expected"), [
    ("red", AALBY, "Tak. Dine svar er gemt. Din sygeplejerske har fået besked. Ring til "
     "Hjemmesygeplejen, Aalby Kommune på 72 00 00 21 med det samme, hvis du ikke allerede har "
     "talt med dem. Har du svær åndenød, så ring 112. Ring 112"),
    ("red", {"name": "Lægerne ved Torvet", "phone": None}, "Tak. Dine svar er gemt. Din "
     "sygeplejerske har fået besked. Ring til Lægerne ved Torvet med det samme, hvis du ikke "
     "allerede har talt med dem. Har du svær åndenød, så ring 112. Ring 112"),
    ("red", None, "Tak. Dine svar er gemt. Din sygeplejerske har fået besked. Ring til dit "
     "behandlingsteam med det samme, hvis du ikke allerede har talt med dem. Har du svær "
     "åndenød, så ring 112. Ring 112"),
    ("yellow", AALBY, "Tak. Dine svar er gemt. Din sygeplejerske har fået besked og ser på "
     "dine svar i dag. Hvis du får det meget værre, så kontakt dit behandlingsteam som aftalt."),
    (None, AALBY, "Tak. Dine svar er gemt, og dit behandlingsteam kan se dem. Hvis du får det "
     "meget værre, så kontakt dit behandlingsteam som aftalt."),
])
def test_after_sending_the_page_says_what_happens_next(app, monkeypatch, severity,  # noqa: F811
                                                       monitoring, expected: str) -> None:
    page = submitted(app, monkeypatch, severity, monitoring)
    assert words(page) == expected
    assert f'data-severity="{severity or ""}"' in page
    assert "Du har 2 ud af 4 symptomer, der er værre end normalt." in page
    assert ('href="tel:+4572000021"' in page) == (severity == "red" and monitoring == AALBY)


def test_the_cat_score_is_explained_in_plain_words(app, monkeypatch) -> None:  # noqa: F811
    page = submitted(app, monkeypatch, None, AALBY, kind="cat")
    assert "Din CAT-score er 24 ud af 40" in page
    assert "Jo højere tal, jo mere påvirker din KOL din hverdag." in page
