"""The CAT and the COPD symptom diary as FHIR Questionnaires, their responses and scores (pure).

Sources: /work/shared/reference/clinical-codes.md §7 (CAT: 8 items scored 0-5, total 0-40,
impact bands, no LOINC code) and §1.2 (the OpenTele Region Hovedstaden yes/no questions).
The CAT is owned by GSK: the item texts here are short paraphrases, not the licensed wording.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from telekol.fhir.codes import OBSERVATION_CATEGORY, OBSERVATION_KEY_SYSTEM

QUESTIONNAIRE_BASE = "https://telekol.dk/fhir/Questionnaire"
# Local code systems owned by the TeleKOL project (documented in docs/devices.md): LOINC has
# no code for the CAT total or a symptom count.
SCORES_SYSTEM = "https://telekol.dk/fhir/CodeSystem/telekol-scores"
CAT_IMPACT_SYSTEM = "https://telekol.dk/fhir/CodeSystem/cat-impact"
RESPONSE_KEY_SYSTEM = "https://telekol.dk/fhir/sid/questionnaire-response-key"


def N_(text: str) -> str:
    """Mark English text for the translation catalogue; the pages translate it."""
    return text


@dataclass(frozen=True)
class Item:
    """One question: its linkId, English text and, for 0-5 scales, the two end anchors."""

    link_id: str
    text: str
    best: str = ""
    worst: str = ""


@dataclass(frozen=True)
class QuestionnaireDef:
    """One questionnaire TeleKOL accepts and the score Observation it yields."""

    kind: str
    title: str
    answer_type: str  # integer (0-5) | boolean
    items: tuple[Item, ...]
    type_code: str  # Observation.type_code of the score
    score_code: str
    score_display: str

    @property
    def url(self) -> str:
        """Return the canonical URL of the Questionnaire."""
        return f"{QUESTIONNAIRE_BASE}/{self.kind}"


CAT_SCALE = range(6)
QUESTIONNAIRES = {q.kind: q for q in (
    QuestionnaireDef("cat", N_("COPD Assessment Test (CAT)"), "integer", (
        Item("cough", N_("How much do you cough?"), N_("Not at all"), N_("All the time")),
        Item("phlegm", N_("How much phlegm (mucus) is in your chest?"), N_("None"),
             N_("My chest is full of it")),
        Item("chest_tightness", N_("How tight does your chest feel?"), N_("Not tight"),
             N_("Very tight")),
        Item("breathlessness", N_("How breathless are you going up a slope or stairs?"),
             N_("Not breathless"), N_("Very breathless")),
        Item("activities", N_("How limited are you in activities at home?"), N_("Not limited"),
             N_("Very limited")),
        Item("confidence", N_("How confident are you leaving home despite your lung disease?"),
             N_("Fully confident"), N_("Not confident at all")),
        Item("sleep", N_("How well do you sleep?"), N_("Soundly"),
             N_("Badly because of my lungs")),
        Item("energy", N_("How much energy do you have?"), N_("Lots of energy"),
             N_("No energy at all")),
    ), "cat", "cat-total", "COPD Assessment Test (CAT) total score"),
    QuestionnaireDef("copd-symptoms", N_("COPD symptom diary"), "boolean", (
        Item("more_breathless", N_("Are you more breathless than usual?")),
        Item("more_sputum", N_("Do you have more phlegm than usual?")),
        Item("sputum_colour_changed", N_("Has your phlegm changed colour?")),
        Item("more_cough", N_("Are you coughing more than usual?")),
    ), "symptoms", "copd-symptom-count", "Number of COPD symptoms worse than usual"),
)}
# Impact level of a CAT total (secondary sources in clinical-codes.md §7; GSK's guide is primary).
CAT_BANDS = ((9, "low", N_("Low impact")), (20, "medium", N_("Medium impact")),
             (30, "high", N_("High impact")), (40, "very-high", N_("Very high impact")))

Answers = tuple[tuple[str, int | bool], ...]


def check_answers(kind: str, answers: Any, errors: list[str]) -> Answers:
    """Return the answers in item order, appending a sentence for every problem."""
    if not isinstance(answers, dict):
        errors.append("answers must be an object")
        return ()
    definition = QUESTIONNAIRES[kind]
    known = {item.link_id for item in definition.items}
    unknown = [_show(key) for key in answers if key not in known]
    if unknown:
        more = f" and {len(unknown) - 3} more" if len(unknown) > 3 else ""
        errors.append(f"answers holds {', '.join(unknown[:3])}{more}, not questions of {kind}")
    found: list[tuple[str, int | bool]] = []
    for item in definition.items:
        value: Any = answers.get(item.link_id)
        if item.link_id not in answers:
            errors.append(f"answers.{item.link_id} is required")
        elif definition.answer_type == "boolean" and not isinstance(value, bool):
            errors.append(f"answers.{item.link_id} must be true or false")
        elif definition.answer_type == "integer" and (
                isinstance(value, bool) or not isinstance(value, int) or value not in CAT_SCALE):
            errors.append(f"answers.{item.link_id} must be an integer from 0 to 5")
        else:
            found.append((item.link_id, value))
    return tuple(found)


def score(answers: Answers) -> int:
    """Return the total: the CAT sum, or the number of symptoms answered yes."""
    return sum(int(value) for _, value in answers)


def cat_impact(total: int) -> tuple[str, str]:
    """Return the (code, display) of a CAT total's impact band."""
    return next((code, display) for upper, code, display in CAT_BANDS if total <= upper)


def questionnaire_resource(kind: str) -> dict[str, Any]:
    """Return the Questionnaire definition of `kind` (English text, linkIds, answer range)."""
    definition = QUESTIONNAIRES[kind]
    options = ([{"valueInteger": n} for n in CAT_SCALE]
               if definition.answer_type == "integer" else None)
    items = [{"linkId": item.link_id, "text": item.text, "type": definition.answer_type,
              "required": True, **({"answerOption": options} if options else {})}
             for item in definition.items]
    return {"resourceType": "Questionnaire", "id": kind, "url": definition.url,
            "name": kind.replace("-", "_").upper(), "title": definition.title,
            "status": "active", "subjectType": ["Patient"], "item": items}


def questionnaire_response(*, kind: str, answers: Answers, response_id: str, key: str,
                           patient_id: str, device_id: str | None,
                           authored: str) -> dict[str, Any]:
    """Return the completed QuestionnaireResponse; its author is the device, else the patient."""
    patient = {"reference": f"Patient/{patient_id}"}
    author = {"reference": f"Device/{device_id}"} if device_id else patient
    value_key = "valueBoolean" if QUESTIONNAIRES[kind].answer_type == "boolean" else "valueInteger"
    items = [{"linkId": link_id, "answer": [{value_key: value}]} for link_id, value in answers]
    return {"resourceType": "QuestionnaireResponse", "id": response_id,
            "identifier": {"system": RESPONSE_KEY_SYSTEM, "value": key},
            "questionnaire": QUESTIONNAIRES[kind].url, "status": "completed",
            "subject": patient, "authored": authored, "author": author, "source": patient,
            "item": items}


def score_observation(*, kind: str, total: int, response_id: str, key: str, patient_id: str,
                      device_id: str | None, effective: str, issued: str) -> dict[str, Any]:
    """Return the Observation of a response's total score, derived from the response."""
    definition = QUESTIONNAIRES[kind]
    coding = {"system": SCORES_SYSTEM, "code": definition.score_code,
              "display": definition.score_display}
    survey = {"system": OBSERVATION_CATEGORY, "code": "survey", "display": "Survey"}
    resource: dict[str, Any] = {
        "resourceType": "Observation",
        "identifier": [{"system": OBSERVATION_KEY_SYSTEM,
                        "value": f"{key}-{definition.type_code}"}],
        "status": "final", "category": [{"coding": [survey]}],
        "code": {"coding": [coding], "text": definition.score_display},
        "subject": {"reference": f"Patient/{patient_id}"}, "effectiveDateTime": effective,
        "issued": issued, "performer": [{"reference": f"Patient/{patient_id}"}],
        "valueInteger": total,
        "derivedFrom": [{"reference": f"QuestionnaireResponse/{response_id}"}],
    }
    if device_id:
        resource["device"] = {"reference": f"Device/{device_id}"}
    if kind == "cat":
        code, display = cat_impact(total)
        resource["interpretation"] = [{"coding": [{"system": CAT_IMPACT_SYSTEM, "code": code,
                                                   "display": display}], "text": display}]
    return resource


def _show(key: str) -> str:
    shown = key if key.isprintable() else repr(key)
    return shown if len(shown) <= 40 else shown[:37] + "..."
