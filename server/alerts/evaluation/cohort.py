"""A synthetic COPD cohort with scripted exacerbations of known onset (pure, seeded).

Each patient has their own baselines (SpO2, pulse, weight, FEV1, CAT), day-to-day noise, a
measurement schedule (twice daily for the first 14 days, then every 2-3 days, some sessions
missed, extra sessions on days the patient feels worse), a daily symptom diary and a weekly CAT.
Exacerbations (0-2 per patient) have a prodrome of 2-7 days in which SpO2 drifts down, pulse
rises, FEV1 falls, symptoms appear and CAT rises; isolated bad days are not exacerbations and
exist to measure false alarms. The numbers are plausible, not fitted to any data set: the cohort
is a regression instrument for `evaluate_rules`, not a model of real patients.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from telekol.server.alerts.rules.snapshot import Reading

START = datetime(2025, 1, 6, tzinfo=UTC)  # fixed, so a seed always gives the same cohort
MORNING, EVENING, DIARY = timedelta(hours=7), timedelta(hours=17), timedelta(hours=19)
CARDINAL = ("more_breathless", "more_sputum", "sputum_colour_changed")
SYMPTOM_CODES = (*CARDINAL, "more_cough")


@dataclass(frozen=True)
class Exacerbation:
    """A scripted exacerbation: full severity at `onset`, a prodrome before, recovery after."""

    onset: datetime
    prodrome_days: int
    plateau_days: int
    recovery_days: int
    spo2_drop: float  # percentage points at full severity
    pulse_rise: float  # /min
    fev1_fall: float  # fraction of baseline
    cat_rise: float  # points

    @property
    def end(self) -> datetime:
        """Return when the patient is back at baseline."""
        return self.onset + timedelta(days=self.plateau_days + self.recovery_days)

    def level(self, at: datetime) -> float:
        """Return 0..1: how far into the exacerbation the patient is at `at`."""
        days = (at - self.onset) / timedelta(days=1)
        if days < -self.prodrome_days or days >= self.plateau_days + self.recovery_days:
            return 0.0
        if days < 0:
            return 1 + days / self.prodrome_days
        if days < self.plateau_days:
            return 1.0
        return 1 - (days - self.plateau_days) / self.recovery_days


@dataclass(frozen=True)
class SyntheticPatient:
    """One patient's readings (time order), scripted exacerbations and isolated bad days."""

    patient_id: str
    hypercapnic: bool
    readings: tuple[Reading, ...]
    exacerbations: tuple[Exacerbation, ...] = ()
    bad_days: tuple[date, ...] = ()


@dataclass(frozen=True)
class Cohort:
    """The generated patients and how they were generated."""

    patients: tuple[SyntheticPatient, ...]
    days: int
    seed: int


def generate_cohort(patients: int = 200, days: int = 90, seed: int = 1, *,
                    exacerbation_weights: tuple[float, ...] = (0.45, 0.4, 0.15),
                    bad_day_rate: float = 0.03, hypercapnic_share: float = 0.15) -> Cohort:
    """Return `patients` synthetic patients over `days` days; the same seed, the same cohort.

    `exacerbation_weights[k]` is the weight of a patient having k exacerbations.
    """
    rng = random.Random(seed)
    made = tuple(_patient(rng, f"syn-{i + 1:04d}", days, exacerbation_weights, bad_day_rate,
                          rng.random() < hypercapnic_share) for i in range(patients))
    return Cohort(made, days, seed)


def _patient(rng: random.Random, patient_id: str, days: int, weights: tuple[float, ...],
             bad_day_rate: float, hypercapnic: bool) -> SyntheticPatient:
    count = rng.choices(range(len(weights)), weights=weights)[0]
    episodes = _exacerbations(rng, days, count)
    busy = {START.date() + timedelta(days=d) for e in episodes
            for d in range(_day(e.onset) - 8, _day(e.end) + 1)}
    bad = tuple(day for day in (START.date() + timedelta(days=d) for d in range(days))
                if day not in busy and rng.random() < bad_day_rate)
    base = {"spo2": rng.uniform(88.5, 91.5) if hypercapnic else rng.uniform(93.5, 96.5),
            "pulse": rng.uniform(65, 88), "weight": rng.uniform(55, 95),
            "fev1": rng.uniform(0.8, 2.0), "cat": rng.uniform(8, 25)}
    readings: list[Reading] = []
    for d in range(days):
        midnight = START + timedelta(days=d)
        bad_today = midnight.date() in bad
        worst = max((e.level(midnight + MORNING) for e in episodes), default=0.0)
        extra = (worst > 0.4 and rng.random() < 0.6) or (bad_today and rng.random() < 0.5)
        for at in _sessions(rng, d, extra):
            readings += _session(rng, midnight + at, base, episodes, bad_today, at == MORNING)
        if rng.random() < 0.8:
            readings += _diary(rng, midnight + DIARY, episodes, bad_today)
        if d % 7 == 6 and rng.random() < 0.9:
            level = max((e.level(midnight + DIARY) * e.cat_rise for e in episodes), default=0.0)
            cat = round(min(40.0, max(0.0, base["cat"] + level + rng.gauss(0, 1.0))))
            when = midnight + DIARY + timedelta(minutes=5)
            readings.append(_reading("cat", cat, "{score}", when))
    return SyntheticPatient(patient_id, hypercapnic, tuple(readings), episodes, bad)


def _exacerbations(rng: random.Random, days: int, count: int) -> tuple[Exacerbation, ...]:
    """Return up to `count` non-overlapping exacerbations with onset inside the period."""
    found: list[Exacerbation] = []
    for _ in range(count * 10):
        if len(found) == count or days < 12:
            break
        onset = START + timedelta(days=rng.randint(8, days - 2), hours=rng.uniform(0, 24))
        if any(abs(onset - e.onset) < timedelta(days=28) for e in found):
            continue
        found.append(Exacerbation(
            onset, prodrome_days=rng.randint(2, 7), plateau_days=rng.randint(3, 6),
            recovery_days=rng.randint(5, 10), spo2_drop=rng.uniform(2, 8),
            pulse_rise=rng.uniform(6, 20), fev1_fall=rng.uniform(0.08, 0.3),
            cat_rise=rng.uniform(2, 8)))
    return tuple(sorted(found, key=lambda e: e.onset))


def _sessions(rng: random.Random, day: int, extra: bool) -> list[timedelta]:
    """Twice daily for 14 days, then every 2-3 days (by day number); 10-15 % missed."""
    if day < 14:
        return [at for at in (MORNING, EVENING) if rng.random() > 0.1]
    scheduled = day % (2 + day // 14 % 2) == 0
    return [MORNING] if (scheduled and rng.random() > 0.15) or extra else []


def _session(rng: random.Random, at: datetime, base: dict[str, float],
             episodes: tuple[Exacerbation, ...], bad: bool, morning: bool) -> list[Reading]:
    """One measuring session: SpO2 and pulse; weight and FEV1 in the morning."""
    spo2_off = max((e.level(at) * e.spo2_drop for e in episodes), default=0.0)
    pulse_off = max((e.level(at) * e.pulse_rise for e in episodes), default=0.0)
    fev1_off = max((e.level(at) * e.fev1_fall for e in episodes), default=0.0)
    if bad:
        spo2_off += rng.uniform(2, 5)
        pulse_off += rng.uniform(5, 15)
        fev1_off += rng.uniform(0.05, 0.15)
    noise = max(-2.0, min(2.0, rng.gauss(0, 0.8)))  # oximeter noise, clipped at ±2 points
    spo2 = min(100.0, round(base["spo2"] - spo2_off + noise))
    found = [_reading("spo2", spo2, "%", at),
             _reading("pulse", round(base["pulse"] + pulse_off + rng.gauss(0, 4)), "/min", at)]
    if morning:
        weight = round(base["weight"] + rng.gauss(0, 0.3), 1)
        fev1 = round(base["fev1"] * (1 - fev1_off + rng.gauss(0, 0.04)), 2)
        found += [_reading("weight", weight, "kg", at + timedelta(minutes=2)),
                  _reading("fev1", fev1, "L", at + timedelta(minutes=4))]
    return found


def _diary(rng: random.Random, at: datetime, episodes: tuple[Exacerbation, ...],
           bad: bool) -> list[Reading]:
    """The daily symptom diary: yes (1) is likelier the deeper into an exacerbation."""
    level = max((e.level(at) for e in episodes), default=0.0)
    chance = max(0.85 * level, 0.4 if bad else 0.01)
    return [_reading(code, float(rng.random() < chance), "1", at) for code in SYMPTOM_CODES]


def _reading(code: str, value: float, unit: str, at: datetime) -> Reading:
    return Reading(code, float(value), unit, at, at)


def _day(moment: datetime) -> int:
    return (moment - START).days
