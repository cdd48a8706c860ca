"""The shared care plan: one per episode, versioned, never changed in place (service layer).

Every door (the JSON API, the pages, FHIR, the demo seed, approved threshold proposals)
reads and writes plans here. Saving a version that changes thresholds, relative limits or
schedules brings the rules' live tables (Threshold, PatientRuleSettings.overrides and the
patient's MeasurementSchedule rows) in line with it in the same transaction, so what the
plan says is what the rules do. Content: server/care/plan_content.py.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import delete
from sqlmodel import Session, col, select
from telekol.server import events
from telekol.server.care.access import may, team_organizations
from telekol.server.care.episodes import current_episode, latest_episode
from telekol.server.care.plan_content import (
    RULE_SECTIONS,
    CarePlanContent,
    LiveRows,
    as_json,
    changed_sections,
    live_rows,
    parse_content,
    summarize,
)
from telekol.server.care.programme import DEFAULT_PROGRAMME, programme
from telekol.server.db import utcnow
from telekol.server.models import (
    CarePlanVersion,
    Episode,
    MeasurementSchedule,
    Organization,
    PatientRuleSettings,
    Threshold,
    User,
)

LIVE_SECTIONS = ("schedules", "thresholds", "relative")


class CarePlanError(ValueError):
    """A care plan request that cannot be carried out (the message says why)."""


class NotAllowed(CarePlanError):
    """The user may see the patient but not make this change."""


class StaleVersion(CarePlanError):
    """The change was made from a version that is no longer the newest."""

    def __init__(self, current: CarePlanVersion | None) -> None:
        number = current.version if current else 0
        super().__init__(f"the care plan has changed meanwhile: the current version is {number}")
        self.current = current


def current_version(session: Session, patient_id: str) -> CarePlanVersion | None:
    """Return the newest version of the plan of the patient's latest episode, if any."""
    episode = latest_episode(session, patient_id)
    if episode is None:
        return None
    return session.exec(select(CarePlanVersion).where(
        CarePlanVersion.episode_id == episode.id)
        .order_by(col(CarePlanVersion.version).desc())).first()


def history(session: Session, patient_id: str) -> list[CarePlanVersion]:
    """Return every version of the latest episode's plan, newest first."""
    episode = latest_episode(session, patient_id)
    if episode is None:
        return []
    return list(session.exec(select(CarePlanVersion).where(
        CarePlanVersion.episode_id == episode.id)
        .order_by(col(CarePlanVersion.version).desc())))


def version_of(session: Session, patient_id: str, number: int) -> CarePlanVersion | None:
    """Return version `number` of the latest episode's plan, if it exists."""
    return next((row for row in history(session, patient_id) if row.version == number), None)


def content_of(row: CarePlanVersion | None) -> CarePlanContent:
    """Return a version's content (an empty plan when there is no version)."""
    return parse_content(row.content) if row is not None else CarePlanContent()


def save(session: Session, user: User, patient_id: str, base_version: Any,
         data: Any) -> CarePlanVersion:
    """Save new content made from `base_version`; check who may change which section."""
    if isinstance(base_version, bool) or not isinstance(base_version, int):
        raise CarePlanError("base_version must be the number of the version the change "
                            "was made from (0 when there is no plan yet)")
    episode = current_episode(session, patient_id)
    if episode is None:
        raise CarePlanError("the patient has no episode that is not finished")
    new = parse_content(data)
    current = current_version(session, patient_id)
    if base_version != (current.version if current else 0):
        raise StaleVersion(current)
    old = content_of(current)
    changed = changed_sections(old, new)
    if not changed:
        raise CarePlanError("the content is the same as the current version")
    check_may_change(session, user, patient_id, changed)
    return record_version(session, episode, new, author=user, previous=current,
                          summary=summarize(old, new))


def check_may_change(session: Session, user: User, patient_id: str,
                     sections: list[str]) -> None:
    """Raise NotAllowed unless `user` may change every one of `sections`."""
    if any(s in RULE_SECTIONS for s in sections) and not may(
            session, user, "set_thresholds", patient_id):
        raise NotAllowed("only a doctor of the organisation responsible for treatment may "
                         "change thresholds and relative limits; propose a change instead")
    if any(s not in RULE_SECTIONS for s in sections) and not may(
            session, user, "edit_care_plan", patient_id):
        raise NotAllowed("only clinicians of the organisations responsible for monitoring or "
                         "treatment may change the care plan")


def start_from_programme(session: Session, episode: Episode, *, author: User | None = None,
                         name: str = DEFAULT_PROGRAMME, extra: Mapping[str, Any] | None = None,
                         summary: str | None = None,
                         variant: str | None = None) -> CarePlanVersion:
    """Give a new episode its plan version 1 from the programme's defaults (limits,
    schedules, self-care, each number with its source); the rules follow it at once.

    A patient a clinician has marked hypercapnic gets the programme's "hypercapnic" limits
    unless `variant` names another ("" for none). `extra` replaces whole sections (the
    demo's goals and rule overrides, for example). The treating doctor reviews and changes
    the plan from then on.
    """
    defaults = programme(name)
    if variant is None:
        settings = session.get(PatientRuleSettings, episode.patient_id)
        variant = "hypercapnic" if settings is not None and settings.hypercapnic else ""
    monitoring = session.get(Organization, episode.monitoring_org_id)
    content = parse_content({**defaults.plan_content(monitoring.name if monitoring else "",
                                                     variant), **(extra or {})})
    label = f"{defaults.label} ({variant})" if variant else defaults.label
    return record_version(session, episode, content, author=author,
                          previous=current_version(session, episode.patient_id),
                          summary=summary or label, by=label,
                          threshold_sources=defaults.sources(variant))


def record_version(session: Session, episode: Episode, new: CarePlanContent, *,
                   author: User | None, previous: CarePlanVersion | None, summary: str,
                   at: datetime | None = None, sync: bool = True,
                   threshold_sources: Mapping[str, str] | None = None,
                   by: str = "") -> CarePlanVersion:
    """Append a version after `previous`; with `sync`, update the rules' live tables.

    `threshold_sources` names where a limit comes from (a programme's cited default);
    otherwise the limits' source is the plan version. `by` names the author when no user
    made the version (a programme's defaults).
    """
    row = CarePlanVersion(
        episode_id=episode.id, patient_id=episode.patient_id,
        version=(previous.version if previous else 0) + 1, content=as_json(new),
        changed_by=author.id if author else None,
        changed_by_name=author.display_name if author else by,
        changed_by_org=author.organization_id if author else None,
        changed_at=at or utcnow(), summary=summary[:1000])
    session.add(row)
    session.flush()  # the (episode, version) key refuses a concurrent save of the same base
    if sync:
        changed = changed_sections(content_of(previous), new)
        sync_live(session, episode.patient_id, live_rows(new),
                  [s for s in changed if s in LIVE_SECTIONS], row, threshold_sources or {})
    return row


def sync_live(session: Session, patient_id: str, rows: LiveRows, sections: list[str],
              version: CarePlanVersion, threshold_sources: Mapping[str, str]) -> None:
    """Write the sections of a plan version the rules read into their live tables."""
    source = f"care plan version {version.version}"
    who = version.changed_by_name or "care plan"
    if "thresholds" in sections:
        _sync_thresholds(session, patient_id, rows, who, source, version.changed_at,
                         threshold_sources)
    if "relative" in sections:
        settings = session.get(PatientRuleSettings, patient_id) or PatientRuleSettings(
            patient_id=patient_id)
        settings.overrides = dict(rows.overrides)
        settings.set_by, settings.set_at, settings.source = who, version.changed_at, source
        session.add(settings)
    if "schedules" in sections:
        session.execute(delete(MeasurementSchedule).where(
            col(MeasurementSchedule.patient_id) == patient_id))
        for item in rows.schedules:
            session.add(MeasurementSchedule(
                id=str(uuid.uuid4()), patient_id=patient_id, code=item.code, kind=item.kind,
                due_local=item.due_local, weekdays=list(item.weekdays),
                every_days=item.every_days, from_day=item.from_day, to_day=item.to_day,
                source=source))
    session.flush()


def _sync_thresholds(session: Session, patient_id: str, rows: LiveRows, who: str,
                     source: str, at: datetime, sources: Mapping[str, str]) -> None:
    existing = {t.measurement: t for t in session.exec(
        select(Threshold).where(Threshold.patient_id == patient_id))}
    for code, row in existing.items():
        if code not in rows.thresholds:
            session.delete(row)
    for code, limits in rows.thresholds.items():
        row = existing.get(code) or Threshold(patient_id=patient_id, measurement=code,
                                              set_by=who)
        values = limits.model_dump()
        if code in existing and all(getattr(row, k) == v for k, v in values.items()):
            continue  # unchanged: keeps who set it and when
        for name, value in values.items():
            setattr(row, name, value)
        cited = sources.get(code)
        row.set_by, row.set_at = who, at
        row.source = (f"{source}: {cited}" if cited else source)[:500]
        session.add(row)


def version_view(row: CarePlanVersion) -> dict[str, Any]:
    """Return a version as the API shows it."""
    return {"patient_id": row.patient_id, "episode_id": row.episode_id,
            "version": row.version, "summary": row.summary,
            "changed_at": events.instant(row.changed_at),
            "changed_by": {"id": row.changed_by, "name": row.changed_by_name,
                           "organization": row.changed_by_org},
            "content": row.content}


def plan_event(session: Session, row: CarePlanVersion) -> dict[str, Any]:
    """Return the live event telling the care team (and the patient) of a new version."""
    orgs = team_organizations(session, [row.patient_id]).get(row.patient_id, [])
    data = {key: value for key, value in version_view(row).items() if key != "content"}
    return {"type": "care_plan", "rooms": events.rooms_for(row.patient_id, orgs), "data": data}
