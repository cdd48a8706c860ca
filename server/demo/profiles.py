"""The demo patients' physiology: own baselines, an archetype each, and how a worsening moves them.

Pure. Shared by the 90-day demo history (server/demo/history.py) and the device simulator
(device_gateway/simulator.py), so live readings carry on where each patient's history ends.
Demo data, not clinical advice: the numbers are plausible, not fitted to any study. A
stable patient's values stay inside the COPD programme's default limits
(server/care/programmes/copd.json, docs/clinical.md) including the noise in demo_readings.py.

Time is counted in days on the history's axis: day 0 is HISTORY_DAYS days ago and day
HISTORY_DAYS is now; the simulator always lives at day HISTORY_DAYS.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, replace

HISTORY_DAYS = 90
SPO2_AT_FULL_WORSENING = 89.5  # where a worsening of level 1 takes a patient's SpO2 (yellow)
# What a worsening of level 1 adds on top of the SpO2 fall (demo data, cf. the prodrome of
# server/alerts/evaluation/cohort.py): pulse, FEV1 as a fraction of baseline, CAT points,
# temperature.
PULSE_RISE, FEV1_FALL, CAT_RISE, FEVER = 18.0, 0.25, 7.0, 1.5


@dataclass(frozen=True)
class Vitals:
    """The values a patient's readings scatter around at one moment."""

    spo2: float
    pulse: float
    weight: float
    bp_sys: float
    bp_dia: float
    fev1: float
    cat: float
    temperature: float = 36.7


@dataclass(frozen=True)
class Worsening:
    """A worsening that ramps up, holds and recovers; positions in one unit (days or seconds)."""

    start: float
    ramp: float
    hold: float
    recover: float
    peak: float = 1.0

    @property
    def end(self) -> float:
        """Return where the patient is back to baseline."""
        return self.start + self.ramp + self.hold + self.recover

    def level(self, at: float) -> float:
        """Return 0..peak: how far into the worsening the patient is at `at`."""
        x = at - self.start
        if x <= 0 or at >= self.end:
            return 0.0
        if x < self.ramp:
            return self.peak * x / self.ramp
        if x < self.ramp + self.hold:
            return self.peak
        return self.peak * (1 - (x - self.ramp - self.hold) / self.recover)


@dataclass(frozen=True)
class Profile:
    """One demo patient: baseline, archetype and habits (minutes after local midnight)."""

    cpr: str
    archetype: str  # stable | borderline | decliner | exacerbation | hypercapnic
    baseline: Vitals
    decline: Vitals | None = None  # change over the whole history, reached now (decliner)
    exacerbation: Worsening | None = None  # on the history's day axis
    morning: int = 8 * 60
    evening: int = 19 * 60
    odd_days: float = 0.02  # chance of an isolated day with a worse cough (a cold), diary only
    breathless: float = 0.0  # chance of "more breathless" in the diary by the end (decliner)


def vitals(profile: Profile, day: float, level: float = 0.0) -> Vitals:
    """Return the patient's expected values on history day `day` at an extra worsening `level`."""
    found = profile.baseline
    if profile.decline is not None:
        share = min(max(day / HISTORY_DAYS, 0.0), 1.0)
        d = profile.decline
        found = Vitals(found.spo2 + d.spo2 * share, found.pulse + d.pulse * share,
                       found.weight + d.weight * share, found.bp_sys + d.bp_sys * share,
                       found.bp_dia + d.bp_dia * share, found.fev1 + d.fev1 * share,
                       found.cat + d.cat * share)
    if profile.exacerbation is not None:
        level = max(level, profile.exacerbation.level(day))
    return worse(found, level) if level > 0 else found


def worse(base: Vitals, level: float) -> Vitals:
    """Return `base` moved by a worsening of `level` (1 is a full one; more is worse still)."""
    fall = max(base.spo2 - SPO2_AT_FULL_WORSENING, 2.0)
    return replace(base, spo2=base.spo2 - level * fall,
                   pulse=base.pulse + level * PULSE_RISE, fev1=base.fev1 * (1 - level * FEV1_FALL),
                   cat=base.cat + level * CAT_RISE, temperature=base.temperature + level * FEVER)


def _v(spo2: float, pulse: float, weight: float, bp: tuple[float, float], fev1: float,
       cat: float) -> Vitals:
    return Vitals(spo2, pulse, weight, bp[0], bp[1], fev1, cat)


# The eight named demo patients of server/demo/seed.py PATIENTS, by CPR. Poul's profile is the
# story of the demo's threshold proposal (server/demo/care_plans.py): stable around 92 %
# without symptoms, so 91 % yellow alerts come often. Inge is marked hypercapnic
# (seed.RULE_SETTINGS): NEWS2 SpO2 Scale 2, kept just above the contract's yellow limit 92 %.
PROFILES: dict[str, Profile] = {p.cpr: p for p in (
    Profile("0101419996", "stable", _v(95.2, 76, 64.0, (132, 78), 1.25, 12), morning=7 * 60 + 40),
    Profile("1503459995", "borderline", _v(92.6, 82, 88.5, (142, 84), 1.55, 11),
            morning=8 * 60 + 20, evening=20 * 60, odd_days=0.0),
    Profile("2207389998", "hypercapnic", _v(93.0, 86, 58.0, (128, 74), 0.85, 19),
            morning=9 * 60, evening=18 * 60 + 30),
    Profile("0911509997", "exacerbation", _v(94.6, 78, 81.0, (138, 82), 1.40, 15),
            exacerbation=Worsening(start=HISTORY_DAYS - 17, ramp=3, hold=2, recover=12,
                                   peak=1.3),
            morning=7 * 60 + 15, evening=19 * 60 + 30),
    Profile("3004429992", "decliner", _v(95.3, 74, 66.0, (134, 80), 1.35, 13),
            decline=_v(-3.3, 7, -1.8, (0, 0), -0.17, 5), breathless=0.15,
            morning=8 * 60 + 45, evening=19 * 60),
    Profile("1812479991", "stable", _v(95.8, 70, 92.0, (146, 88), 1.85, 9), morning=6 * 60 + 50),
    Profile("2502399993", "stable", _v(94.6, 84, 71.0, (124, 72), 0.78, 24),
            morning=9 * 60 + 30, evening=18 * 60),
    Profile("1406449990", "stable", _v(96.0, 72, 69.0, (136, 80), 1.60, 10), morning=8 * 60),
)}


def profile_for(cpr: str) -> Profile:
    """Return a named patient's profile, or a stable one made from the CPR (extra patients)."""
    found = PROFILES.get(cpr)
    if found is not None:
        return found
    rng = random.Random(f"profile|{cpr}")
    base = _v(rng.uniform(94.3, 96.5), rng.uniform(64, 86), round(rng.uniform(55, 95), 1),
              (rng.uniform(120, 148), rng.uniform(70, 86)), rng.uniform(0.9, 2.0),
              rng.uniform(6, 18))
    return Profile(cpr, "stable", base, morning=rng.randint(7 * 60, 9 * 60 + 30),
                   evening=rng.randint(18 * 60, 20 * 60 + 30))
