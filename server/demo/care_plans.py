"""Demo care plans and one pending threshold proposal (demo data, not clinical advice).

Each version 1 starts from the COPD programme's defaults (server/care/programmes/copd.json:
SpO2 red below 88 % and yellow below 92 % as CONTRACT section 6 asks, the other limits and
the schedules with their sources), signed by the treating GP, plus the demo patient's rule
overrides, goals and notes; the rules follow it at once.
"""

from __future__ import annotations

from sqlmodel import Session, col, select
from telekol.server.care import plan as care_plan
from telekol.server.care import proposals
from telekol.server.models import (
    CarePlanVersion,
    Episode,
    Patient,
    PatientRuleSettings,
    ThresholdProposal,
    User,
)

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
        settings = session.get(PatientRuleSettings, episode.patient_id)
        extra = {"relative": dict(settings.overrides) if settings else {}, "goals": GOALS,
                 "notes": NOTES}
        # variant "": CONTRACT section 6 asks SpO2 red below 88 % and yellow 88-91 % for every
        # demo patient, the hypercapnic one (Inge) included.
        care_plan.start_from_programme(session, episode, author=author, extra=extra,
                                       summary="first version from the COPD programme "
                                               "defaults (demo data)", variant="")
    session.flush()
    _seed_proposal(session)


def _seed_proposal(session: Session) -> None:
    patient = session.exec(select(Patient).where(Patient.cpr == PROPOSAL["cpr"])).first()
    nurse = session.exec(select(User).where(User.username == PROPOSAL["username"])).first()
    if patient is None or nurse is None or session.exec(select(ThresholdProposal).where(
            ThresholdProposal.patient_id == patient.id)).first() is not None:
        return
    proposals.propose(session, nurse, patient.id, PROPOSAL["measurement"], PROPOSAL["limits"],
                      PROPOSAL["reason"])
