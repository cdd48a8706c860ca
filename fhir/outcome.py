"""Build FHIR R4 OperationOutcome resources, the error body of every /fhir response."""

from __future__ import annotations

from typing import Any

SEVERITIES = frozenset({"fatal", "error", "warning", "information"})
# The R4 issue-type value set, http://hl7.org/fhir/ValueSet/issue-type (required binding).
ISSUE_TYPES = frozenset(
    {
        "invalid", "structure", "required", "value", "invariant", "security", "login",
        "unknown", "expired", "forbidden", "suppressed", "processing", "not-supported",
        "duplicate", "multiple-matches", "not-found", "deleted", "too-long", "code-invalid",
        "extension", "too-costly", "business-rule", "conflict", "transient", "lock-error",
        "no-store", "exception", "timeout", "incomplete", "throttled", "informational",
    }
)  # fmt: skip


def operation_outcome(severity: str, code: str, diagnostics: str) -> dict[str, Any]:
    """Return an OperationOutcome with one issue."""
    if severity not in SEVERITIES:
        raise ValueError(f"{severity!r} is not an issue severity")
    if code not in ISSUE_TYPES:
        raise ValueError(f"{code!r} is not in the issue-type value set")
    issue = {"severity": severity, "code": code, "diagnostics": diagnostics}
    return {"resourceType": "OperationOutcome", "issue": [issue]}
