"""Monitoring programmes as data: what a newly enrolled patient's care plan starts from.

A programme file (server/care/programmes/<name>.json) holds the default limits and schedules
with the source of every number, and the self-care texts. A new patient's care plan
version 1 is made from it (server/care/plan.py `start_from_programme`); from then on the
plan is the patient's own and the treating doctor changes it. Nothing here is a clinical
constant in code: change the file (docs/clinical.md lists what it says and why).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

PROGRAMMES_DIR = Path(__file__).resolve().parent / "programmes"
DEFAULT_PROGRAMME = "copd"


class UnknownProgramme(LookupError):
    """No programme file of that name."""


@dataclass(frozen=True)
class Programme:
    """One programme's defaults: plan content (care-plan schema) and where each number is from."""

    name: str
    title: dict[str, str]
    version: str
    thresholds: dict[str, dict[str, float | None]]
    schedules: tuple[dict[str, Any], ...]
    relative: dict[str, float]
    self_care: dict[str, str]
    threshold_sources: dict[str, str]
    schedule_sources: tuple[str, ...]
    # Named variants of the limits for a group of patients (e.g. "hypercapnic"): code → limits.
    variants: dict[str, dict[str, dict[str, float | None]]]
    variant_sources: dict[str, dict[str, str]]

    def limits(self, variant: str | None = None) -> dict[str, dict[str, float | None]]:
        """Return the default limits, with a variant's limits in place of the general ones."""
        return {**self.thresholds, **self.variants.get(variant or "", {})}

    def sources(self, variant: str | None = None) -> dict[str, str]:
        """Return where each of the limits `limits(variant)` comes from."""
        return {**self.threshold_sources, **self.variant_sources.get(variant or "", {})}

    def plan_content(self, monitoring_name: str, variant: str | None = None) -> dict[str, Any]:
        """Return care-plan content with the programme's defaults for one patient."""
        return {"schedules": [dict(s) for s in self.schedules],
                "thresholds": {code: dict(limits)
                               for code, limits in self.limits(variant).items()},
                "relative": dict(self.relative),
                "self_care": {state: text.format(monitoring=monitoring_name)
                              for state, text in self.self_care.items()},
                "goals": [], "notes": ""}

    @property
    def label(self) -> str:
        """Return how versions made from the programme name their source."""
        return f"{self.title.get('en', self.name)} programme defaults {self.version}"


@cache
def programme(name: str = DEFAULT_PROGRAMME) -> Programme:
    """Load a programme file (cached; the files ship with the code)."""
    path = PROGRAMMES_DIR / f"{name}.json"
    if not name.isidentifier() or not path.is_file():
        raise UnknownProgramme(f"no programme {name!r}")
    data = json.loads(path.read_text(encoding="utf-8"))
    thresholds = _limits(data["thresholds"])
    variants = data.get("variants", {})
    schedules = tuple({k: v for k, v in s.items() if k != "source"} for s in data["schedules"])
    return Programme(
        name=data["programme"], title=data["title"], version=str(data["version"]),
        thresholds=thresholds, schedules=schedules, relative=dict(data.get("relative", {})),
        self_care=dict(data.get("self_care", {})),
        threshold_sources={code: limits.get("source", "")
                           for code, limits in data["thresholds"].items()},
        schedule_sources=tuple(s.get("source", "") for s in data["schedules"]),
        variants={name: _limits(v["thresholds"]) for name, v in variants.items()},
        variant_sources={name: {code: limits.get("source", "")
                                for code, limits in v["thresholds"].items()}
                         for name, v in variants.items()})


def _limits(data: dict[str, dict[str, Any]]) -> dict[str, dict[str, float | None]]:
    return {code: {k: v for k, v in limits.items() if k != "source"}
            for code, limits in data.items()}
