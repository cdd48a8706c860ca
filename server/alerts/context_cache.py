"""The gateway's rule inputs per patient, kept in memory between batches.

Loading a patient's limits, care team and 14 days of readings for every batch was most of
the gateway's work. This cache loads them once, adds what the gateway itself stores after
each commit, and checks with one query per batch whether anyone else changed them since
(server/alerts/context_versions.py): a patient whose numbers moved is loaded again.

A batch works on a copy (`checkout`), so a rolled-back batch leaves the kept inputs as
they were; `keep` applies a committed batch's readings, as a fresh load would read them.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable, Mapping
from datetime import datetime

from sqlmodel import Session
from telekol.server.alerts import context_versions
from telekol.server.alerts.rule_context import HISTORY, BatchContexts, PatientInputs, load_inputs
from telekol.server.alerts.rules import Reading

MAX_PATIENTS = 20_000  # about 60 readings each: some tens of MB


class ContextCache:
    """Rule inputs of the patients a gateway has seen, least recently used dropped first."""

    def __init__(self, max_patients: int = MAX_PATIENTS) -> None:
        self.max_patients = max_patients
        self.kept: OrderedDict[str, PatientInputs] = OrderedDict()
        self.loads = 0  # patients loaded from the database (tests and logs read it)

    def checkout(self, session: Session, patient_ids: Iterable[str],
                 now: datetime) -> BatchContexts:
        """Return the batch's inputs: kept ones still current, the others loaded now."""
        ids = set(patient_ids)
        versions = context_versions.current(session, ids)
        stale = {pid for pid in ids
                 if pid not in self.kept or self.kept[pid].versions != versions[pid]}
        for pid in stale:
            self.kept.pop(pid, None)
        if stale:
            self.kept.update(load_inputs(session, stale, now, versions))
            self.loads += len(stale)
        start = now - HISTORY
        inputs = {}
        for pid in ids & self.kept.keys():
            self.kept.move_to_end(pid)
            self.kept[pid].history = self.kept[pid].history.since(start)
            inputs[pid] = self.kept[pid].working_copy(start)
        while len(self.kept) > self.max_patients:
            self.kept.popitem(last=False)
        return BatchContexts(now, inputs)

    def keep(self, stored: Mapping[str, list[Reading]], counted: Mapping[str, int]) -> None:
        """Add a committed batch's readings (as stored) to the kept inputs.

        `counted` holds the patients' `readings` numbers after the commit: one more than
        the kept one means nobody else stored readings for the patient meanwhile.
        """
        for pid, number in counted.items():
            found = self.kept.get(pid)
            if found is None:
                continue
            settings, readings = found.versions
            if number != readings + 1:
                del self.kept[pid]  # someone else wrote too: load afresh next time
                continue
            for reading in stored.get(pid, ()):
                found.history.add(reading)
            found.versions = (settings, number)
