"""Stored Observation rows: triage against the patient's limits, meta, the row's columns.

The mapped resources are valid FHIR by construction, proven for every mapper's output in
the tests and at start-up (server/ingest/mapper_check.py); only what a door changed in them is
validated per reading (`validate=True`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

import orjson
from telekol.fhir.codes import MEASUREMENT_TYPES, READING_CODES, type_for_reading
from telekol.fhir.observation import Triage, profiles_for
from telekol.fhir.reference_range import reference_ranges
from telekol.fhir.validation import validate_resource
from telekol.server.alerts.triage import (
    SEVERITY_ORDER,
    AlertRequest,
    ThresholdSet,
    classify,
    threshold_alert,
)


def triage_readings(readings: Sequence[Any], limits_for: Callable[[str], ThresholdSet | None],
                    ) -> tuple[dict[str, Triage], dict[str, list[AlertRequest]]]:
    """Classify readings against the patient's limits: triage and alerts per measurement type.

    Limits are kept per reading code, so blood pressure has `bp_sys` and `bp_dia` limits;
    the panel Observation takes the worse of its two components.
    """
    triage: dict[str, Triage] = {}
    alerts: dict[str, list[AlertRequest]] = {}
    for reading in readings:
        limits = limits_for(reading.code)
        if limits is None or reading.code not in READING_CODES:
            continue
        kind = type_for_reading(reading.code)
        found = classify(reading.value, limits)
        ranges = () if kind.code != reading.code else reference_ranges(
            red_low=limits.red_low, yellow_low=limits.yellow_low,
            yellow_high=limits.yellow_high, red_high=limits.red_high,
            unit_code=kind.unit, unit_display=kind.unit_display)
        current = triage.get(kind.code)
        if current is None or SEVERITY_ORDER[found.severity] > SEVERITY_ORDER[current.severity]:
            triage[kind.code] = Triage(found.severity, found.direction, ranges)
        request = threshold_alert(_label(reading.code), reading.value, kind.unit_display, limits)
        if request is not None:
            alerts.setdefault(kind.code, []).append(request)
    return triage, alerts


def observation_resource(observation_id: str, type_code: str, now: datetime,
                         resource: dict[str, Any]) -> dict[str, Any]:
    """Return a mapped Observation with its id and meta added."""
    meta: dict[str, Any] = {"versionId": "1", "lastUpdated": _instant(now)}
    if profiles_for(type_code):  # FHIR forbids empty arrays (spirometry has no profile)
        meta["profile"] = profiles_for(type_code)
    return {"resourceType": "Observation", "id": observation_id, "meta": meta,
            **{k: v for k, v in resource.items() if k != "resourceType"}}


def observation_values(patient_id: str, device_id: str, msg_id: str, type_code: str,
                       effective: datetime, now: datetime, resource: dict[str, Any], *,
                       validate: bool = False) -> dict[str, Any]:
    """Return the stored row's columns of a complete Observation (`observation_resource`)."""
    if validate:
        validate_resource(resource)
    return {"id": resource["id"], "patient_id": patient_id, "device_id": device_id,
            "msg_id": msg_id, "type_code": type_code, "effective": effective, "issued": now,
            "value": _primary_value(resource),
            "severity": _severity(resource.get("interpretation")), "version_id": 1,
            "last_updated": now, "resource": orjson.dumps(resource).decode()}


_LABELS = {"spo2": "SpO2", "bp_sys": "Systolic blood pressure",
           "bp_dia": "Diastolic blood pressure"}


def _label(code: str) -> str:
    kind = MEASUREMENT_TYPES.get(code)
    return _LABELS.get(code) or (kind.display_en if kind else code)


def _primary_value(resource: dict[str, Any]) -> float | None:
    quantity = resource.get("valueQuantity")
    if quantity is None and resource.get("component"):
        quantity = resource["component"][0].get("valueQuantity")
    return None if quantity is None else float(quantity["value"])


_INTERPRETATION_SEVERITY = {"LL": "red", "HH": "red", "L": "yellow", "H": "yellow", "N": "green"}


def _severity(interpretation: list[dict[str, Any]] | None) -> str | None:
    if not interpretation:
        return None
    code = interpretation[0]["coding"][0]["code"]
    return _INTERPRETATION_SEVERITY.get(code)


def _instant(moment: datetime) -> str:
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")
