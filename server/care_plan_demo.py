"""Demo care plans and one pending threshold proposal (demo data, not clinical advice).

Each version 1 restates what the rules already do for the demo patient: the SpO2 limits
(CONTRACT section 6), the patient's rule overrides and the default SpO2 schedule (daily
by 12:00). So it is recorded without rewriting the live tables, and the demo alerts
exactly as before the plans existed.
"""

from __future__ import annotations

from sqlmodel import Session, col, select
from telekol.server import care_plan, proposals
from telekol.server.care_plan_content import parse_content
from telekol.server.models import (
    CarePlanVersion,
    Episode,
    Organization,
    Patient,
    PatientRuleSettings,
    Threshold,
    ThresholdProposal,
    User,
)

DEMO_SCHEDULE = {"code": "spo2", "kind": "measurement", "times": ["12:00"], "weekdays": [],
                 "every_days": 1, "from_day": 0, "to_day": None}
SELF_CARE = {
    "green": "Mål som planlagt, tag din faste medicin og hold dig i gang hver dag.",
    "yellow": "Mål igen om en time og brug din anfaldsmedicin som aftalt. Er du stadig gul, "
              "så ring til {monitoring} samme dag.",
    "red": "Ring til {monitoring} med det samme. Har du svær åndenød i hvile, så ring 112.",
}
GOALS = ["Måle iltmætning hver dag", "Gå en tur på mindst 15 minutter om dagen",
         "Kende tegnene på en forværring og vide, hvem der skal ringes til"]
NOTES = "Demoplan (demodata, ikke klinisk rådgivning)."
PROPOSAL = {"cpr": "1503459995", "username": "nurse.aalby", "measurement": "spo2",
            "limits": {"red_low": 88.0, "yellow_low": 91.0},
            "reason": "Poul ligger stabilt på 91-92 % uden symptomer og får mange gule "
                      "alarmer; forslag: gul grænse 91 % (demodata)."}


def seed_demo_care_plans(session: Session) -> None:
    """Give every current episode without a plan its version 1, and add the demo proposal."""
    plans = select(CarePlanVersion.episode_id)
    episodes = session.exec(select(Episode).where(
        Episode.status != "finished", col(Episode.id).not_in(plans))).all()
    for episode in episodes:
        author = session.exec(select(User).where(
            User.organization_id == episode.treatment_org_id, col(User.active).is_(True))
            .order_by(col(User.id))).first()
        content = parse_content(_content(session, episode))
        care_plan.record_version(session, episode, content, author=author, previous=None,
                                 summary="first version (demo data)", sync=False)
    session.flush()
    _seed_proposal(session)


def _content(session: Session, episode: Episode) -> dict[str, object]:
    limits = session.exec(select(Threshold).where(Threshold.patient_id == episode.patient_id))
    settings = session.get(PatientRuleSettings, episode.patient_id)
    monitoring = session.get(Organization, episode.monitoring_org_id)
    name = monitoring.name if monitoring else "dit sundhedsteam"
    return {
        "schedules": [DEMO_SCHEDULE],
        "thresholds": {t.measurement: {"red_low": t.red_low, "yellow_low": t.yellow_low,
                                       "yellow_high": t.yellow_high, "red_high": t.red_high}
                       for t in limits},
        "relative": dict(settings.overrides) if settings else {},
        "self_care": {state: text.format(monitoring=name) for state, text in SELF_CARE.items()},
        "goals": GOALS, "notes": NOTES}


def _seed_proposal(session: Session) -> None:
    patient = session.exec(select(Patient).where(Patient.cpr == PROPOSAL["cpr"])).first()
    nurse = session.exec(select(User).where(User.username == PROPOSAL["username"])).first()
    if patient is None or nurse is None or session.exec(select(ThresholdProposal).where(
            ThresholdProposal.patient_id == patient.id)).first() is not None:
        return
    proposals.propose(session, nurse, patient.id, PROPOSAL["measurement"], PROPOSAL["limits"],
                      PROPOSAL["reason"])
