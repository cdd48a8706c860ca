"""Catalogue of the measurement types TeleKOL receives and how each is coded in FHIR.

Sources (rows of /work/shared/reference/clinical-codes.md):
- LOINC codes, displays and the R4 vital-signs profiles: §1.1 and the §1.2 code table
  (SpO2 2708-6 + 59408-5 as in the R5 satO2 example, 8867-4, 9279-1, 8310-5, 29463-7,
  85354-9 with 8480-6/8462-4, FEV1 20150-9, FVC 19868-9, PEF 19935-6).
- IEEE 11073-10101 (MDC) 32-bit codes and reference ids: the §2 table (150456, 149530,
  151562, 150364, 188736, 152586, 188928, 152584, 150020/150021/150022).
- UCUM unit codes: §1.1 (ucum-vitals-common) and §6; category `exam` for spirometry: §8.3.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

LOINC = "http://loinc.org"
MDC = "urn:iso:std:iso:11073:10101"
UCUM = "http://unitsofmeasure.org"
OBSERVATION_CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"
CATEGORY_DISPLAY = {"vital-signs": "Vital Signs", "exam": "Exam"}
# Placeholder canonical owned by the TeleKOL project (not registered anywhere); it names the
# `{device_id}-{msg_id}-{type code}` business identifier that makes an Observation idempotent.
OBSERVATION_KEY_SYSTEM = "https://telekol.dk/fhir/sid/observation-key"
VITALSIGNS_PROFILE = "http://hl7.org/fhir/StructureDefinition/vitalsigns"


class Coding(NamedTuple):
    """One (system, code, display) triple; a plain tuple so it compares with tuples."""

    system: str
    code: str
    display: str


@dataclass(frozen=True)
class Component:
    """One payload reading that becomes a component of a panel Observation (blood pressure)."""

    reading_code: str
    display_en: str
    codings: tuple[Coding, ...]
    plausible: tuple[float, float]


@dataclass(frozen=True)
class MeasurementType:
    """One kind of measurement: its codings, canonical UCUM unit and plausibility range."""

    code: str
    display_en: str
    display_da: str
    codings: tuple[Coding, ...]
    unit: str
    unit_display: str
    category: str
    profile: tuple[str, ...]
    plausible: tuple[float, float]
    components: tuple[Component, ...] = ()


_LOINC_DISPLAY = {
    "2708-6": "Oxygen saturation in Arterial blood",
    "59408-5": "Oxygen saturation in Arterial blood by Pulse oximetry",
    "8867-4": "Heart rate",
    "9279-1": "Respiratory rate",
    "20150-9": "FEV1",
    "19868-9": "Forced vital capacity [Volume] Respiratory system by Spirometry",
    "19935-6": "Maximum expiratory gas flow Respiratory system airway by Peak flow meter",
    "29463-7": "Body weight",
    "8310-5": "Body temperature",
    "85354-9": "Blood pressure panel with all children optional",
    "8480-6": "Systolic blood pressure",
    "8462-4": "Diastolic blood pressure",
}
_MDC_REFERENCE_ID = {
    "150456": "MDC_PULS_OXIM_SAT_O2",
    "149530": "MDC_PULS_OXIM_PULS_RATE",
    "151562": "MDC_RESP_RATE",
    "152586": "MDC_VOL_AWAY_EXP_FORCED_1S",
    "188928": "MDC_VOL_AWAY_EXP_FORCED_CAPACITY",
    "152584": "MDC_FLOW_AWAY_EXP_FORCED_PEAK",
    "188736": "MDC_MASS_BODY_ACTUAL",
    "150364": "MDC_TEMP_BODY",
    "150020": "MDC_PRESS_BLD_NONINV",
    "150021": "MDC_PRESS_BLD_NONINV_SYS",
    "150022": "MDC_PRESS_BLD_NONINV_DIA",
}

# `plausible` ranges are TECHNICAL plausibility limits in the canonical unit: they reject
# values no living patient or working device can produce (e.g. SpO2 101 %). They are NOT
# clinical thresholds; alert limits are set per patient by the responsible clinician.
# fmt: off
# code, English, Danish, LOINC codes, MDC code, UCUM, unit display, R4 profile, plausible
_ROWS = (
    ("spo2", "Oxygen saturation", "Iltmætning", ("2708-6", "59408-5"), "150456",
     "%", "%", "oxygensat", (50.0, 100.0)),
    ("pulse", "Pulse rate", "Puls", ("8867-4",), "149530",
     "/min", "beats/minute", "heartrate", (20.0, 250.0)),
    ("resp_rate", "Respiratory rate", "Respirationsfrekvens", ("9279-1",), "151562",
     "/min", "breaths/minute", "resprate", (4.0, 80.0)),
    ("fev1", "FEV1", "FEV1", ("20150-9",), "152586",
     "L", "L", None, (0.1, 8.0)),
    ("fvc", "Forced vital capacity", "FVC", ("19868-9",), "188928",
     "L", "L", None, (0.1, 10.0)),
    ("pef", "Peak expiratory flow", "Peak flow", ("19935-6",), "152584",
     "L/min", "L/min", None, (20.0, 1000.0)),
    ("weight", "Body weight", "Vægt", ("29463-7",), "188736",
     "kg", "kg", "bodyweight", (20.0, 350.0)),
    ("temperature", "Body temperature", "Temperatur", ("8310-5",), "150364",
     "Cel", "°C", "bodytemp", (25.0, 45.0)),
    # The panel has no value of its own: the limits that matter are its components'.
    ("bp", "Blood pressure", "Blodtryk", ("85354-9",), "150020",
     "mm[Hg]", "mmHg", "bp", (20.0, 300.0)),
)
# reading code, English, LOINC, MDC, plausible
_BP_COMPONENTS = (
    ("bp_sys", "Systolic blood pressure", "8480-6", "150021", (40.0, 300.0)),
    ("bp_dia", "Diastolic blood pressure", "8462-4", "150022", (20.0, 200.0)),
)
# fmt: on


def _codings(loinc: tuple[str, ...], mdc: str) -> tuple[Coding, ...]:
    first = tuple(Coding(LOINC, code, _LOINC_DISPLAY[code]) for code in loinc)
    return (*first, Coding(MDC, mdc, _MDC_REFERENCE_ID[mdc]))


def _profiles(name: str | None) -> tuple[str, ...]:
    if name is None:
        return ()
    return (f"http://hl7.org/fhir/StructureDefinition/{name}", VITALSIGNS_PROFILE)


def _build(row: tuple) -> MeasurementType:
    code, en, da, loinc, mdc, unit, unit_display, profile, plausible = row
    category = "exam" if profile is None else "vital-signs"
    components = tuple(Component(c[0], c[1], _codings((c[2],), c[3]), c[4]) for c in _BP_COMPONENTS)
    return MeasurementType(
        code, en, da, _codings(loinc, mdc), unit, unit_display, category, _profiles(profile),
        plausible, components if code == "bp" else (),
    )  # fmt: skip


MEASUREMENT_TYPES: dict[str, MeasurementType] = {row[0]: _build(row) for row in _ROWS}

# Reading codes as sent in the MQTT payload (contract §3); bp_sys and bp_dia feed `bp`.
READING_CODES: tuple[str, ...] = (*(c for c in MEASUREMENT_TYPES if c != "bp"), "bp_sys", "bp_dia")
_COMPONENTS = {c.reading_code: c for c in MEASUREMENT_TYPES["bp"].components}


def type_for_reading(reading_code: str) -> MeasurementType:
    """Return the measurement type a payload reading code belongs to (KeyError if none)."""
    return MEASUREMENT_TYPES["bp" if reading_code in _COMPONENTS else reading_code]


def component_for(reading_code: str) -> Component | None:
    """Return the panel component a reading code maps to, if it is one."""
    return _COMPONENTS.get(reading_code)


def plausible_range(reading_code: str) -> tuple[float, float]:
    """Return the technical plausibility range of a reading code, in its canonical unit."""
    component = _COMPONENTS.get(reading_code)
    return component.plausible if component else MEASUREMENT_TYPES[reading_code].plausible


def type_for_coding(system: str | None, code: str) -> MeasurementType | None:
    """Return the type with a top-level coding `system|code`; a None system matches any."""
    for mtype in MEASUREMENT_TYPES.values():
        if any(c.code == code and system in (None, c.system) for c in mtype.codings):
            return mtype
    return None
