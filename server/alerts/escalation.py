"""Escalation: an alert nobody acknowledges in time moves along the care team's chain.

`due_escalations` is the pure decision (clock passed in); `apply_escalations` loads the
policies, applies what is due, records one AlertEscalation row per step and returns the
live events. Policies and opening hours are data (models.EscalationPolicy, OpeningHours).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, time
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select
from telekol.server.alerts.lifecycle import live_event, record
from telekol.server.models import (
    Alert,
    AlertEscalation,
    CareTeamMember,
    EscalationPolicy,
    OpeningHours,
    Organization,
)

TIMEZONE = ZoneInfo("Europe/Copenhagen")
ESCALATING = ("open",)  # acknowledged, snoozed and resolved alerts have an owner
DEFAULT_POLICY_ID = "default"
DEFAULT_SOURCE = ("TeleKOL operational default (no published time limit found); "
                  "set by the monitoring organisation")


@dataclass(frozen=True)
class Policy:
    """A patient's resolved chain (organisation ids on the care team) and limits in minutes."""

    chain: tuple[str, ...]
    limits: Mapping[str, int]  # severity -> minutes to acknowledge


@dataclass(frozen=True)
class Window:
    """One opening window on a weekday (0 = Monday), local time."""

    weekday: int
    opens: time
    closes: time


@dataclass(frozen=True)
class Escalation:
    """One step to take: move `alert_id` from `from_org` to `to_org` (chain `level`)."""

    alert_id: int
    patient_id: str
    level: int
    from_org: str
    to_org: str
    reason: str


def is_open(windows: Sequence[Window], now: datetime) -> bool:
    """Return whether an organisation with these windows is open at `now` (none = always)."""
    if not windows:
        return True
    local = now.astimezone(TIMEZONE)
    return any(w.weekday == local.weekday() and w.opens <= local.time() < w.closes
               for w in windows)


def due_escalations(alerts: Iterable[Alert], policies: Mapping[str, Policy],
                    orgs: Mapping[str, Sequence[Window]], now: datetime) -> list[Escalation]:
    """Return the escalations due at `now`: one step per alert, to the next open organisation.

    An open alert escalates when its limit has passed since it reached its current
    organisation, or at once when that organisation is closed. `policies` is keyed by
    patient id, `orgs` maps organisation id to its opening windows.
    """
    found = []
    for alert in alerts:
        policy = policies.get(alert.patient_id)
        limit = policy.limits.get(alert.severity) if policy else None
        if policy is None or limit is None or alert.status not in ESCALATING:
            continue
        level = alert.escalation_level or 0
        if level + 1 >= len(policy.chain):
            continue
        current = policy.chain[level]
        since = alert.escalated_at or alert.created_at
        waited = (now - since).total_seconds() / 60
        if not is_open(orgs.get(current, ()), now):
            reason = f"{current} is closed (opening hours)"
        elif waited >= limit:
            reason = f"not acknowledged within {limit} min ({waited:.0f} min)"
        else:
            continue
        nxt = next((i for i in range(level + 1, len(policy.chain))
                    if is_open(orgs.get(policy.chain[i], ()), now)), None)
        if nxt is None:
            continue  # nobody further is open: try again on the next run
        assert alert.id is not None
        found.append(Escalation(alert.id, alert.patient_id, nxt, current, policy.chain[nxt],
                                reason))
    return found


def resolve_chain(chain: Sequence[str], team: Mapping[str, tuple[str, str]]) -> tuple[str, ...]:
    """Turn ids and placeholders into care-team organisation ids (team: id -> (role, kind))."""
    out: list[str] = []
    for entry in chain:
        if entry.startswith("@"):
            matches = sorted(o for o, (role, kind) in team.items() if entry[1:] in (role, kind))
        else:
            matches = [entry] if entry in team else []
        out.extend(m for m in matches if m not in out)
    return tuple(out)


def ensure_default_policy(session: Session) -> None:
    """Add the global default policy (monitoring, then hospital; red 60 min) if missing."""
    if session.get(EscalationPolicy, DEFAULT_POLICY_ID) is None:
        session.add(EscalationPolicy(id=DEFAULT_POLICY_ID, chain=["@monitoring", "@hospital"],
                                     red_ack_minutes=60, source=DEFAULT_SOURCE))


def load_policies(session: Session, patient_ids: set[str]) -> dict[str, Policy]:
    """Return each patient's most specific policy, resolved against the care team."""
    teams: dict[str, dict[str, tuple[str, str]]] = {}
    rows = session.exec(select(CareTeamMember, Organization).join(
        Organization, col(Organization.id) == CareTeamMember.organization_id).where(
        col(CareTeamMember.patient_id).in_(patient_ids),
        col(CareTeamMember.sees_data).is_(True)))  # never escalate to whom consent hides it
    for member, org in rows:
        teams.setdefault(member.patient_id, {})[org.id] = (member.role, org.kind)
    rows_p = list(session.exec(select(EscalationPolicy)))
    by_patient = {p.patient_id: p for p in rows_p if p.patient_id}
    by_org = {p.organization_id: p for p in rows_p if p.organization_id and not p.patient_id}
    default = next((p for p in rows_p if not p.patient_id and not p.organization_id), None)
    policies = {}
    for patient_id in patient_ids:
        team = teams.get(patient_id, {})
        monitoring = [o for o, (role, _) in sorted(team.items()) if role == "monitoring"]
        row = by_patient.get(patient_id) or next(
            (by_org[o] for o in monitoring if o in by_org), None) or default
        if row is not None:
            limits = {s: m for s, m in (("red", row.red_ack_minutes),
                                        ("yellow", row.yellow_ack_minutes)) if m is not None}
            policies[patient_id] = Policy(resolve_chain(row.chain, team), limits)
    return policies


def load_hours(session: Session) -> dict[str, list[Window]]:
    """Return every organisation's opening windows."""
    hours: dict[str, list[Window]] = {}
    for row in session.exec(select(OpeningHours)):
        hours.setdefault(row.organization_id, []).append(Window(
            row.weekday, time.fromisoformat(row.opens), time.fromisoformat(row.closes)))
    return hours


def apply_escalations(engine: Engine, now: datetime) -> list[dict[str, Any]]:
    """Escalate what is due at `now`, one transaction per alert; return the live events."""
    with Session(engine) as session:
        alerts = list(session.exec(select(Alert).where(col(Alert.status).in_(ESCALATING))))
        policies = load_policies(session, {a.patient_id for a in alerts})
        steps = due_escalations(alerts, policies, load_hours(session), now)
    return [event for step in steps if (event := _apply(engine, step, now)) is not None]


def _apply(engine: Engine, step: Escalation, now: datetime) -> dict[str, Any] | None:
    with Session(engine, expire_on_commit=False) as session:
        alert = session.get(Alert, step.alert_id)
        if alert is None or alert.status not in ESCALATING:
            return None  # acknowledged meanwhile
        alert.escalation_level, alert.escalated_to = step.level, step.to_org
        alert.escalated_at = alert.updated_at = now
        session.add(AlertEscalation(alert_id=step.alert_id, level=step.level, at=now,
                                    from_organization=step.from_org,
                                    to_organization=step.to_org, reason=step.reason))
        record(session, alert, "escalated", "scheduler", now,
               note=f"{step.from_org} -> {step.to_org}: {step.reason}")
        try:
            session.flush()
        except IntegrityError:
            return None  # another scheduler took this step first
        event = escalation_event(session, alert, step)
        session.commit()
    return event


def escalation_event(session: Session, alert: Alert, step: Escalation) -> dict[str, Any]:
    """Return the alert event marking it as the receiving organisation's to act on."""
    event = live_event(session, alert)
    room = f"org:{step.to_org}"
    if room not in event["rooms"]:
        event["rooms"].insert(0, room)
    event["data"].update(escalated_to=step.to_org, escalation_level=step.level,
                         escalated_at=event["data"]["updated_at"],
                         escalation_reason=step.reason)
    return event
