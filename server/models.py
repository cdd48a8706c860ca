"""Tables: who may see whom (organisations, care teams), devices, readings, alerts."""

from __future__ import annotations

from datetime import datetime
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    Index,
    LargeBinary,
    Text,
    UniqueConstraint,
    text,
)
from sqlmodel import Field, SQLModel
from telekol.server.db import UTCDateTime, utcnow


def _instant(**kwargs: Any) -> Any:
    return Field(sa_type=UTCDateTime, **kwargs)


class Organization(SQLModel, table=True):
    """A hospital department, a municipal nursing unit or a GP clinic."""

    id: str = Field(primary_key=True, max_length=64)
    name: str = Field(max_length=200)
    kind: str = Field(max_length=20)  # hospital | municipality | gp
    sor_code: str | None = Field(default=None, max_length=20)
    # E.164 (server/care/telephone.py): the number a patient calls, shown with a tel: link.
    phone: str | None = Field(default=None, max_length=20)


class User(SQLModel, table=True):
    """A person who logs in: clinician, administrator or patient."""

    __tablename__ = "app_user"  # "user" is reserved in PostgreSQL

    id: int | None = Field(default=None, primary_key=True)
    username: str = Field(max_length=64, unique=True, index=True)
    password_hash: str = Field(max_length=200)
    display_name: str = Field(max_length=200)
    role: str = Field(max_length=20)  # nurse | doctor | gp | secretary | admin | patient
    organization_id: str | None = Field(default=None, foreign_key="organization.id")
    patient_id: str | None = Field(default=None, foreign_key="patient.id")
    active: bool = True
    created_at: datetime = _instant(default_factory=utcnow)
    # Lock-out (server/accounts/login.py): consecutive failed logins, and until when refused.
    failed_logins: int = 0
    locked_until: datetime | None = _instant(default=None)
    # Signed into every bearer token and session; bumped on a password change or
    # deactivation, which invalidates everything issued before.
    token_version: int = 0

    # The session protocol Flask-Login expects, without importing Flask here.
    is_authenticated: ClassVar[bool] = True
    is_anonymous: ClassVar[bool] = False

    @property
    def is_active(self) -> bool:
        """Return whether the account may log in."""
        return self.active

    def get_id(self) -> str:
        """Return the id stored in the browser session."""
        return str(self.id)


class Patient(SQLModel, table=True):
    """A citizen monitored at home."""

    id: str = Field(primary_key=True, max_length=64)
    cpr: str = Field(max_length=10, unique=True, index=True)
    family: str = Field(max_length=100)
    given: str = Field(max_length=200)
    created_at: datetime = _instant(default_factory=utcnow)

    @property
    def display(self) -> str:
        """Return the name as shown on screens."""
        return f"{self.given} {self.family}".strip()


class CareTeamMember(SQLModel, table=True):
    """An organisation on a patient's care team, with its part in the care."""

    # Every access check asks "which patients may this organisation see?"; the primary key
    # leads with patient_id, so without this index that is a scan of the whole table.
    __table_args__ = (Index("ix_careteammember_organization_patient", "organization_id",
                            "patient_id"),)

    patient_id: str = Field(foreign_key="patient.id", primary_key=True, max_length=64)
    organization_id: str = Field(foreign_key="organization.id", primary_key=True, max_length=64)
    # The organisation's part, kept in step with the patient's Episode by server/care/episodes.py:
    # monitoring | treatment | specialist | member.
    role: str = Field(max_length=20)
    # Whether consent lets this organisation see the patient's data: true for the data
    # custodian, and for everyone else only while the patient consents to sharing across
    # sectors (server/care/episodes.py refresh_access keeps it; access.py reads it).
    sees_data: bool = True


class Device(SQLModel, table=True):
    """A home device or hub with its own MQTT credentials."""

    id: str = Field(primary_key=True, max_length=64)  # the device_id = MQTT username
    patient_id: str | None = Field(default=None, foreign_key="patient.id", index=True)
    kind: str = Field(default="hub", max_length=30)
    model: str | None = Field(default=None, max_length=128)
    serial: str | None = Field(default=None, max_length=128)
    firmware: str | None = Field(default=None, max_length=128)
    battery: float | None = None
    mqtt_password_hash: str = Field(max_length=200)
    last_seen_at: datetime | None = _instant(default=None)
    created_at: datetime = _instant(default_factory=utcnow)


class Threshold(SQLModel, table=True):
    """A patient's red/yellow limits for one measurement type."""

    __table_args__ = (UniqueConstraint("patient_id", "measurement"),)

    id: int | None = Field(default=None, primary_key=True)
    patient_id: str = Field(foreign_key="patient.id", index=True, max_length=64)
    measurement: str = Field(max_length=20)
    red_low: float | None = None
    yellow_low: float | None = None
    yellow_high: float | None = None
    red_high: float | None = None
    set_by: str = Field(max_length=200)
    set_at: datetime = _instant(default_factory=utcnow)
    source: str = Field(default="", max_length=500)


class InboundMessage(SQLModel, table=True):
    """The idempotency ledger: one row per stored (device_id, msg_id)."""

    device_id: str = Field(primary_key=True, max_length=64)
    msg_id: str = Field(primary_key=True, max_length=64)
    patient_id: str = Field(max_length=64)
    received_at: datetime = _instant()
    taken_at: datetime = _instant()


class GatewayLease(SQLModel, table=True):
    """Which gateway process consumes the devices' messages (server/ingest/lease.py).

    One row: the holder's instance id, the epoch (raised at each change of holder, the
    fencing token every ingest transaction checks) and when the lease lapses, in seconds
    of the database's clock. `client_id` is the durable MQTT session every holder uses.
    """

    name: str = Field(primary_key=True, max_length=32)
    client_id: str = Field(max_length=64)
    holder: str | None = Field(default=None, max_length=64)
    epoch: int = 0
    expires_at: float = 0.0


class GatewayHeartbeat(SQLModel, table=True):
    """One running gateway process: its slot name, role and latest heartbeat (DB clock)."""

    slot: str = Field(primary_key=True, max_length=160)
    instance: str = Field(max_length=64)
    role: str = Field(max_length=16)  # active | standby
    connected: bool = False
    started_at: float = 0.0
    beat_at: float = 0.0


class QuarantinedMessage(SQLModel, table=True):
    """A rejected payload kept with its reasons; nothing is dropped silently."""

    __table_args__ = (Index("ix_quarantine_device_received", "device_id", "received_at"),)

    id: int | None = Field(default=None, primary_key=True)
    received_at: datetime = _instant(index=True)
    topic: str = Field(max_length=300)
    device_id: str | None = Field(default=None, max_length=64, index=True)
    msg_id: str | None = Field(default=None, max_length=128)
    errors: list[str] = Field(sa_column=Column(JSON, nullable=False))
    # The first bytes exactly as received (server/ingest/quarantine.py bounds them), with the whole
    # payload's size and SHA-256; both are null on rows kept before the bound existed.
    payload: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    size: int | None = Field(default=None)
    sha256: str | None = Field(default=None, max_length=64)


class QuarantineOverflow(SQLModel, table=True):
    """What a device had rejected beyond its quarantine quota: counted, not kept."""

    device_id: str = Field(primary_key=True, max_length=64)  # "" when no device was named
    dropped: int = 0
    dropped_bytes: int = Field(default=0, sa_type=BigInteger)
    first_at: datetime = _instant()
    last_at: datetime = _instant()
    last_errors: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))


class Observation(SQLModel, table=True):
    """A stored measurement; `resource` is its FHIR JSON, the other columns index it."""

    __table_args__ = (Index("ix_observation_patient_type_effective", "patient_id", "type_code",
                            "effective"),
                      Index("ix_observation_patient_effective", "patient_id", "effective"))

    id: str = Field(primary_key=True, max_length=64)
    patient_id: str = Field(foreign_key="patient.id", max_length=64)
    device_id: str = Field(max_length=64)
    msg_id: str = Field(max_length=64)
    type_code: str = Field(max_length=20)
    effective: datetime = _instant()
    issued: datetime = _instant()
    value: float | None = None
    severity: str | None = Field(default=None, max_length=10)
    version_id: int = 1
    last_updated: datetime = _instant()
    resource: str = Field(sa_column=Column(Text, nullable=False))


class RuleContextVersion(SQLModel, table=True):
    """How often a patient's rule inputs changed, so a gateway may keep them in memory.

    `settings` counts changes to limits, plan, care team, consent, pause and name (database
    triggers, server/alerts/context_versions.py); `readings` counts transactions that stored
    readings or answers (the Recorder). A kept context is current while both match.
    """

    patient_id: str = Field(primary_key=True, max_length=64)
    settings: int = 0
    readings: int = 0


class Alert(SQLModel, table=True):
    """Something a clinician must look at, stored before anyone is told."""

    # One unresolved alert per patient and rule, also across gateway processes.
    __table_args__ = (Index("ux_alert_unresolved_patient_rule", "patient_id", "rule",
                            unique=True, sqlite_where=text("status != 'resolved'"),
                            postgresql_where=text("status != 'resolved'")),)

    id: int | None = Field(default=None, primary_key=True)
    patient_id: str = Field(foreign_key="patient.id", index=True, max_length=64)
    observation_id: str | None = Field(default=None, foreign_key="observation.id")
    rule: str = Field(max_length=50)
    severity: str = Field(max_length=10)  # red | yellow | blue
    status: str = Field(default="open", max_length=20)
    reason: str = Field(max_length=500)
    details: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    created_at: datetime = _instant(index=True)
    updated_at: datetime = _instant(index=True)
    acknowledged_by: int | None = Field(default=None, foreign_key="app_user.id")
    acknowledged_at: datetime | None = _instant(default=None)
    note: str | None = Field(default=None, max_length=1000)
    resolved_by: int | None = Field(default=None, foreign_key="app_user.id")
    resolved_at: datetime | None = _instant(default=None)
    # Escalation (server/alerts/escalation.py): 0 = with the first organisation of the chain.
    escalation_level: int = 0
    escalated_to: str | None = Field(default=None, foreign_key="organization.id", max_length=64)
    escalated_at: datetime | None = _instant(default=None)
    # Repeats of an open alert update it (server/ingest/recorder.py): how often, and the latest
    # reading (`reason`, `details`, `last_observation_id`, `last_at` = when it was taken).
    count: int = 1
    last_observation_id: str | None = Field(default=None, foreign_key="observation.id")
    last_at: datetime | None = _instant(default=None)
    # The reading that raised the alert to its current (worst) severity, and what the rule
    # found then: a red alert repeated by a yellow reading still shows why it is red.
    severity_observation_id: str | None = Field(default=None, max_length=64)
    severity_reason: str = Field(default="", max_length=500)
    severity_details: dict[str, Any] = Field(default_factory=dict,
                                             sa_column=Column(JSON, nullable=False))
    severity_at: datetime | None = _instant(default=None)
    # Workflow (server/alerts/lifecycle.py): snooze, the message the patient sees on
    # acknowledgement, and how it was resolved ("manual" | "automatic").
    snoozed_until: datetime | None = _instant(default=None)
    snooze_reason: str | None = Field(default=None, max_length=500)
    patient_message: str | None = Field(default=None, max_length=1000)
    resolution: str | None = Field(default=None, max_length=20)


class StoredResource(SQLModel, table=True):
    """A FHIR resource kept as JSON (QuestionnaireResponse, Provenance, ...).

    Observations have their own table (the ingest hot path); every other stored
    resource type lives here, indexed by type, patient and clinical time.
    """

    # The second index serves Patient/$everything, which asks by patient for every type.
    __table_args__ = (Index("ix_storedresource_type_patient_effective", "resource_type",
                            "patient_id", "effective"),
                      Index("ix_storedresource_patient_id", "patient_id", "id"))

    id: str = Field(primary_key=True, max_length=64)
    resource_type: str = Field(max_length=40)
    patient_id: str | None = Field(default=None, foreign_key="patient.id", max_length=64)
    effective: datetime | None = _instant(default=None)
    version_id: int = 1
    last_updated: datetime = _instant()
    resource: str = Field(sa_column=Column(Text, nullable=False))


class EscalationPolicy(SQLModel, table=True):
    """Who gets an unacknowledged alert next, and after how long (server/alerts/escalation.py).

    The most specific policy wins: the patient's own, then the monitoring organisation's,
    then the global default (both ids empty). `chain` holds organisation ids or care-team
    placeholders ("@monitoring", "@treatment", "@specialist", "@hospital", "@municipality",
    "@gp"); organisations not on the patient's care team are skipped.
    """

    id: str = Field(primary_key=True, max_length=64)
    patient_id: str | None = Field(default=None, foreign_key="patient.id", index=True,
                                   max_length=64)
    organization_id: str | None = Field(default=None, foreign_key="organization.id",
                                        max_length=64)
    chain: list[str] = Field(sa_column=Column(JSON, nullable=False))
    red_ack_minutes: int | None = 60
    yellow_ack_minutes: int | None = None
    source: str = Field(default="", max_length=500)


class OpeningHours(SQLModel, table=True):
    """One opening window of an organisation (Europe/Copenhagen); none at all = always open."""

    id: int | None = Field(default=None, primary_key=True)
    organization_id: str = Field(foreign_key="organization.id", index=True, max_length=64)
    weekday: int  # 0 = Monday ... 6 = Sunday
    opens: str = Field(max_length=5)  # "08:00"
    closes: str = Field(max_length=5)  # "15:30"


class AlertEscalation(SQLModel, table=True):
    """One escalation of an alert: to whom, from whom, when, why and by what."""

    __table_args__ = (UniqueConstraint("alert_id", "level"),)

    id: int | None = Field(default=None, primary_key=True)
    alert_id: int = Field(foreign_key="alert.id", index=True)
    level: int
    from_organization: str | None = Field(default=None, max_length=64)
    to_organization: str = Field(foreign_key="organization.id", max_length=64)
    at: datetime = _instant()
    reason: str = Field(max_length=500)
    actor: str = Field(default="scheduler", max_length=64)


class MeasurementSchedule(SQLModel, table=True):
    """A measurement or questionnaire expected by a local time, on some days.

    patient_id empty = the default for every patient; a patient's own rows for a code
    replace the default for that code. A patient's rows are written from their care plan
    (server/care/plan.py). Days count from the episode's start: `from_day`..`to_day`
    (inclusive, None = open) lets a plan be intensive for two weeks and then less often.
    """

    id: str = Field(primary_key=True, max_length=64)
    patient_id: str | None = Field(default=None, foreign_key="patient.id", index=True,
                                   max_length=64)
    code: str = Field(max_length=20)
    kind: str = Field(default="measurement", max_length=20)  # measurement | questionnaire
    due_local: str = Field(max_length=5)  # "12:00", Europe/Copenhagen
    weekdays: list[int] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    every_days: int = 1  # 1 = every (allowed week)day, 2 = every other day, ...
    from_day: int = 0
    to_day: int | None = None
    source: str = Field(default="", max_length=500)


class ScheduledAlertKey(SQLModel, table=True):
    """The once-only guarantee for time-based alerts: one row per (patient, rule, occurrence).

    The scheduler inserts it in the transaction that raises the alert, so a second
    scheduler process hits the primary key and raises nothing.
    """

    patient_id: str = Field(foreign_key="patient.id", primary_key=True, max_length=64)
    rule: str = Field(primary_key=True, max_length=50)
    occurrence: str = Field(primary_key=True, max_length=120)
    alert_id: int | None = Field(default=None, foreign_key="alert.id")
    created_at: datetime = _instant()


class PatientRuleSettings(SQLModel, table=True):
    """A clinician's rule settings for one patient: hypercapnic (NEWS2 Scale 2), overrides.

    `overrides` maps RuleParameters names to numbers (server/alerts/rules/parameters.py).
    """

    patient_id: str = Field(foreign_key="patient.id", primary_key=True, max_length=64)
    hypercapnic: bool = False
    overrides: dict[str, float] = Field(default_factory=dict,
                                        sa_column=Column(JSON, nullable=False))
    set_by: str = Field(default="", max_length=200)
    set_at: datetime = _instant(default_factory=utcnow)
    source: str = Field(default="", max_length=500)


class AlertTransition(SQLModel, table=True):
    """The audit trail: one row per change of an alert, written in the same transaction."""

    id: int | None = Field(default=None, primary_key=True)
    alert_id: int = Field(foreign_key="alert.id", index=True)
    at: datetime = _instant()
    actor_user_id: int | None = Field(default=None, foreign_key="app_user.id")
    actor: str = Field(max_length=20)  # user | gateway | scheduler
    # created | updated | acknowledged | snoozed | unsnoozed | resolved | auto-resolved |
    # escalated
    action: str = Field(max_length=20)
    note: str | None = Field(default=None, max_length=1000)


class InboxItem(SQLModel, table=True):
    """A red alert in a treating organisation's (the GP's) inbox; once per alert and org."""

    __table_args__ = (UniqueConstraint("organization_id", "alert_id"),
                      Index("ix_inboxitem_organization_created", "organization_id",
                            "created_at"))

    id: int | None = Field(default=None, primary_key=True)
    organization_id: str = Field(foreign_key="organization.id", max_length=64)
    alert_id: int = Field(foreign_key="alert.id", index=True)
    created_at: datetime = _instant()
    read_at: datetime | None = _instant(default=None)


class Episode(SQLModel, table=True):
    """A patient's telemonitoring episode (FHIR EpisodeOfCare) and who is responsible.

    The data custodian (GDPR data controller) never changes within an episode; monitoring
    (who must react to measurements) and treatment (who sets thresholds) responsibility
    move only when the receiving organisation accepts a Handover. One episode per patient
    is not finished at a time.
    """

    __table_args__ = (Index("ux_episode_current_patient", "patient_id", unique=True,
                            sqlite_where=text("status != 'finished'"),
                            postgresql_where=text("status != 'finished'")),)

    id: str = Field(primary_key=True, max_length=64)
    patient_id: str = Field(foreign_key="patient.id", index=True, max_length=64)
    condition: str = Field(default="copd", max_length=40)  # the disease area
    status: str = Field(default="active", max_length=20)  # active | finished
    custodian_org_id: str = Field(foreign_key="organization.id", max_length=64)
    monitoring_org_id: str = Field(foreign_key="organization.id", max_length=64)
    treatment_org_id: str = Field(foreign_key="organization.id", max_length=64)
    started_at: datetime = _instant(default_factory=utcnow)
    ended_at: datetime | None = _instant(default=None)


class Handover(SQLModel, table=True):
    """A request to hand monitoring or treatment responsibility to another organisation."""

    # One pending request per episode and responsibility, also between two web processes.
    __table_args__ = (Index("ux_handover_pending", "episode_id", "responsibility", unique=True,
                            sqlite_where=text("status = 'pending'"),
                            postgresql_where=text("status = 'pending'")),)

    id: int | None = Field(default=None, primary_key=True)
    episode_id: str = Field(foreign_key="episode.id", index=True, max_length=64)
    responsibility: str = Field(max_length=20)  # monitoring | treatment
    from_org_id: str = Field(foreign_key="organization.id", max_length=64)
    to_org_id: str = Field(foreign_key="organization.id", index=True, max_length=64)
    status: str = Field(default="pending", max_length=20)  # pending|accepted|rejected|withdrawn
    reason: str = Field(default="", max_length=1000)
    requested_by: int = Field(foreign_key="app_user.id")
    requested_at: datetime = _instant(default_factory=utcnow)
    decided_by: int | None = Field(default=None, foreign_key="app_user.id")
    decided_at: datetime | None = _instant(default=None)
    decision_note: str | None = Field(default=None, max_length=1000)


class Consent(SQLModel, table=True):
    """One recorded consent decision; the newest row per patient and scope is in force.

    scope: participation (in telemonitoring) | sharing (across sectors). Rows are never
    changed: a withdrawal is a new row.
    """

    __table_args__ = (Index("ix_consent_patient_scope", "patient_id", "scope", "id"),)

    id: int | None = Field(default=None, primary_key=True)
    patient_id: str = Field(foreign_key="patient.id", max_length=64)
    scope: str = Field(max_length=20)
    granted: bool
    method: str = Field(default="written", max_length=20)  # written | verbal | digital
    note: str = Field(default="", max_length=1000)
    recorded_by: int | None = Field(default=None, foreign_key="app_user.id")
    recorded_by_name: str = Field(default="", max_length=200)
    recorded_at: datetime = _instant(default_factory=utcnow)


class MonitoringPause(SQLModel, table=True):
    """Monitoring paused for a period (holiday, admission): no missing-measurement alerts."""

    id: int | None = Field(default=None, primary_key=True)
    patient_id: str = Field(foreign_key="patient.id", index=True, max_length=64)
    starts_at: datetime = _instant()
    ends_at: datetime = _instant()
    reason: str = Field(max_length=500)
    created_by: int | None = Field(default=None, foreign_key="app_user.id")
    created_at: datetime = _instant(default_factory=utcnow)
    cancelled_at: datetime | None = _instant(default=None)


class CarePlanVersion(SQLModel, table=True):
    """One version of an episode's shared care plan; never changed, the newest is in force.

    `content` follows server/care/plan.py (measurement and questionnaire schedules,
    thresholds, relative limits, self-care plan, goals, notes).
    """

    __table_args__ = (UniqueConstraint("episode_id", "version"),)

    id: int | None = Field(default=None, primary_key=True)
    episode_id: str = Field(foreign_key="episode.id", index=True, max_length=64)
    patient_id: str = Field(foreign_key="patient.id", index=True, max_length=64)
    version: int
    content: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    changed_by: int | None = Field(default=None, foreign_key="app_user.id")
    changed_by_name: str = Field(default="", max_length=200)
    changed_by_org: str | None = Field(default=None, max_length=64)
    changed_at: datetime = _instant(default_factory=utcnow)
    summary: str = Field(default="", max_length=1000)


class ThresholdProposal(SQLModel, table=True):
    """A proposed threshold change, decided by the treatment-responsible organisation."""

    id: int | None = Field(default=None, primary_key=True)
    episode_id: str = Field(foreign_key="episode.id", index=True, max_length=64)
    patient_id: str = Field(foreign_key="patient.id", index=True, max_length=64)
    base_version: int  # the care plan version the proposal was made against
    measurement: str = Field(max_length=20)
    proposed: dict[str, float | None] = Field(sa_column=Column(JSON, nullable=False))
    reason: str = Field(max_length=1000)
    status: str = Field(default="pending", max_length=20)  # pending|approved|rejected|withdrawn
    proposed_by: int = Field(foreign_key="app_user.id")
    proposed_by_name: str = Field(default="", max_length=200)
    proposed_by_org: str | None = Field(default=None, max_length=64)
    proposed_at: datetime = _instant(default_factory=utcnow)
    decided_by: int | None = Field(default=None, foreign_key="app_user.id")
    decided_by_name: str | None = Field(default=None, max_length=200)
    decided_at: datetime | None = _instant(default=None)
    decision_note: str | None = Field(default=None, max_length=1000)
    result_version: int | None = None  # the care plan version an approval made


class Message(SQLModel, table=True):
    """A message about a patient: between care-team members ("team", the patient never
    sees it) or between the patient and their care team ("patient")."""

    __table_args__ = (Index("ix_message_patient_channel_id", "patient_id", "channel", "id"),)

    id: int | None = Field(default=None, primary_key=True)
    patient_id: str = Field(foreign_key="patient.id", max_length=64)
    channel: str = Field(max_length=10)  # team | patient
    author_user_id: int = Field(foreign_key="app_user.id")
    author_name: str = Field(max_length=200)
    author_org: str | None = Field(default=None, max_length=64)
    body: str = Field(sa_column=Column(Text, nullable=False))
    created_at: datetime = _instant(default_factory=utcnow)


class MessageReadMark(SQLModel, table=True):
    """How far a user has read a patient's thread (unread = newer messages by others)."""

    user_id: int = Field(foreign_key="app_user.id", primary_key=True)
    patient_id: str = Field(foreign_key="patient.id", primary_key=True, max_length=64)
    channel: str = Field(primary_key=True, max_length=10)
    last_read_id: int = 0


class AuditRecord(SQLModel, table=True):
    """One access to patient data (or an administrative or system act), in a keyed chain.

    Append-only: `hash` = HMAC-SHA256 under a key kept outside the database over the
    previous record's hash, `seq` and this record's fields (server/audit/log.py); `prev_hash`
    and `seq` are unique, so the chain cannot fork, and a changed or deleted record breaks
    it where it happened.
    """

    __table_args__ = (Index("ix_auditrecord_patient_id", "patient_id", "id"),
                      Index("ix_auditrecord_user_id", "user_id", "id"))

    id: int | None = Field(default=None, primary_key=True)
    at: datetime = _instant(index=True)
    user_id: int | None = None  # no foreign key: the log outlives what it names
    username: str | None = Field(default=None, max_length=64)
    display_name: str | None = Field(default=None, max_length=200)
    role: str | None = Field(default=None, max_length=20)
    organization_id: str | None = Field(default=None, max_length=64)
    patient_id: str | None = Field(default=None, max_length=64)
    action: str = Field(max_length=20)  # read | search | create | update | delete | ...
    resource: str = Field(max_length=300)  # e.g. "Observation?patient=..." or "CarePlan/3"
    door: str = Field(max_length=10)  # ui | api | fhir | live | cli | export
    outcome: str = Field(max_length=20)  # success | denied | failed
    status: int | None = None  # the HTTP status, where there is one
    detail: str = Field(default="", max_length=500)
    seq: int = Field(unique=True)  # place in the chain: 1, 2, 3, ...
    scheme: int = 2  # 1: unkeyed SHA-256 (before the key), 2: HMAC-SHA256 with seq
    prev_hash: str = Field(max_length=64, unique=True)
    hash: str = Field(max_length=64, unique=True)
