"""Map one valid Measurement to FHIR R4 Observation resources (pure, no I/O).

The resources carry no `id` and no `meta`: the caller assigns the id and adds `meta`
(with `profiles_for`) when it stores them, then validates the whole resource.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from telekol.fhir.codes import (
    CATEGORY_DISPLAY,
    MEASUREMENT_TYPES,
    OBSERVATION_CATEGORY,
    OBSERVATION_KEY_SYSTEM,
    UCUM,
    Coding,
    Component,
    MeasurementType,
    type_for_reading,
)

INTERPRETATION_SYSTEM = "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation"
_INTERPRETATIONS = {
    ("red", "low"): ("LL", "Critical low"),
    ("yellow", "low"): ("L", "Low"),
    ("red", "high"): ("HH", "Critical high"),
    ("yellow", "high"): ("H", "High"),
    # A limit crossed on no known side (direction None): the v3 "abnormal" codes.
    ("red", None): ("AA", "Critical abnormal"),
    ("yellow", None): ("A", "Abnormal"),
}
# Units whose readings are whole numbers on real devices: emit them as JSON integers.
_INTEGER_UNITS = frozenset({"%", "/min", "mm[Hg]"})


class _Reading(Protocol):
    # Read-only members, so frozen dataclasses satisfy the protocol.
    @property
    def code(self) -> str: ...
    @property
    def value(self) -> float: ...
    @property
    def unit(self) -> str: ...


class _Measurement(Protocol):
    @property
    def msg_id(self) -> str: ...
    @property
    def taken_at_text(self) -> str: ...
    @property
    def readings(self) -> tuple[_Reading, ...]: ...


@dataclass(frozen=True)
class Triage:
    """The triage colour of one type's value and the limits it was judged against."""

    severity: str  # red | yellow | green
    direction: str | None = None  # low | high | None
    reference_ranges: tuple[dict[str, Any], ...] = ()

    def __post_init__(self) -> None:
        if self.severity not in ("red", "yellow", "green"):
            raise ValueError(f"severity must be red, yellow or green, not {self.severity!r}")
        if self.direction not in ("low", "high", None):
            raise ValueError(f"direction must be low, high or None, not {self.direction!r}")


def profiles_for(type_code: str) -> list[str]:
    """Return the FHIR profile canonicals an Observation of this type conforms to."""
    return list(MEASUREMENT_TYPES[type_code].profile)


def observations_for(
    measurement: _Measurement,
    *,
    patient_id: str,
    device_id: str,
    issued: datetime,
    triage: dict[str, Triage] | None = None,
) -> list[tuple[str, dict[str, Any]]]:
    """Return (type code, Observation) pairs: one per reading, one panel for bp_sys+bp_dia."""
    grouped: dict[str, list[_Reading]] = {}
    for reading in measurement.readings:
        grouped.setdefault(type_for_reading(reading.code).code, []).append(reading)
    result = []
    for type_code, readings in grouped.items():
        mtype = MEASUREMENT_TYPES[type_code]
        resource = _base(mtype, measurement, patient_id, device_id, issued)
        if mtype.components:
            by_code = {r.code: r for r in readings}
            resource["component"] = [
                _component(c, by_code[c.reading_code], mtype)
                for c in mtype.components
                if c.reading_code in by_code
            ]
        else:
            resource["valueQuantity"] = _quantity(readings[0].value, mtype)
        if triage and type_code in triage:
            resource.update(_triage_elements(triage[type_code]))
        result.append((type_code, resource))
    return result


def _base(
    mtype: MeasurementType, measurement: _Measurement, patient_id: str, device_id: str,
    issued: datetime,
) -> dict[str, Any]:  # fmt: skip
    category = {"system": OBSERVATION_CATEGORY, "code": mtype.category,
                "display": CATEGORY_DISPLAY[mtype.category]}  # fmt: skip
    key = f"{device_id}-{measurement.msg_id}-{mtype.code}"
    return {
        "resourceType": "Observation",
        "identifier": [{"system": OBSERVATION_KEY_SYSTEM, "value": key}],
        "status": "final",
        "category": [{"coding": [category]}],
        "code": _concept(mtype.codings, mtype.display_en),
        "subject": {"reference": f"Patient/{patient_id}"},
        "effectiveDateTime": measurement.taken_at_text,
        "issued": _instant(issued),
        "device": {"reference": f"Device/{device_id}"},
    }


def _concept(codings: tuple[Coding, ...], text: str) -> dict[str, Any]:
    coding = [{"system": c.system, "code": c.code, "display": c.display} for c in codings]
    return {"coding": coding, "text": text}


def _component(component: Component, reading: _Reading, mtype: MeasurementType) -> dict[str, Any]:
    return {
        "code": _concept(component.codings, component.display_en),
        "valueQuantity": _quantity(reading.value, mtype),
    }


def _quantity(value: float, mtype: MeasurementType) -> dict[str, Any]:
    number: float | int = value
    if mtype.unit in _INTEGER_UNITS and float(value).is_integer():
        number = int(value)
    return {"value": number, "unit": mtype.unit_display, "system": UCUM, "code": mtype.unit}


def _triage_elements(triage: Triage) -> dict[str, Any]:
    code, display = ("N", "Normal")
    if triage.severity != "green":
        code, display = _INTERPRETATIONS[(triage.severity, triage.direction)]
    coding = {"system": INTERPRETATION_SYSTEM, "code": code, "display": display}
    elements: dict[str, Any] = {"interpretation": [{"coding": [coding], "text": display}]}
    if triage.reference_ranges:
        elements["referenceRange"] = [dict(r) for r in triage.reference_ranges]
    return elements


def _instant(moment: datetime) -> str:
    """Render an instant in UTC with a Z; a naive datetime is taken to be UTC already."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    timespec = "milliseconds" if moment.microsecond else "seconds"
    return moment.astimezone(UTC).isoformat(timespec=timespec).replace("+00:00", "Z")
