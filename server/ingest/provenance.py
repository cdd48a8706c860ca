"""Provenance of data a clinician entered for a patient (telephone, paper, in person)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime

from telekol.fhir.practitioner import reference
from telekol.fhir.provenance import entry_provenance
from telekol.server.fhir_store.resources import instant
from telekol.server.models import StoredResource, User


def provenance_row(user: User, patient_id: str, targets: Sequence[str], *, method: str,
                   now: datetime, provenance_id: str, what: str = "Reading") -> StoredResource:
    """Return the stored Provenance of data `user` entered for the patient."""
    resource = entry_provenance(
        provenance_id=provenance_id, targets=targets, patient_id=patient_id,
        practitioner=reference("Practitioner", str(user.id), user.display_name),
        organization_id=user.organization_id, recorded=instant(now), method=method,
        what=what)
    resource["meta"] = {"versionId": "1", "lastUpdated": instant(now)}
    return StoredResource(id=provenance_id, resource_type="Provenance",
                          patient_id=patient_id, effective=now, version_id=1,
                          last_updated=now, resource=json.dumps(
                              resource, separators=(",", ":"), ensure_ascii=False))
