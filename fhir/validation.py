"""Validate FHIR resources with the R4B models of fhir.resources.

Why R4B: DK Core and the PHD IG are FHIR R4 (4.0.1), and fhir.resources 8 ships no R4
package (its default is R5). R4B (4.3.0) is the closest release it has: it kept the R4
Observation, Patient, Device and OperationOutcome structures, so an R4 resource that
validates here is structurally R4 too. Value sets (LOINC, UCUM, ...) are not checked.
"""

from __future__ import annotations

from typing import Any

from fhir.resources.R4B import get_fhir_model_class
from pydantic import ValidationError


class InvalidResource(ValueError):
    """A resource does not conform to its FHIR R4B structure definition."""


def validate_resource(resource: dict[str, Any]) -> dict[str, Any]:
    """Validate a resource dict against its R4B model and return it unchanged."""
    resource_type = resource.get("resourceType") if isinstance(resource, dict) else None
    if not isinstance(resource_type, str):
        raise InvalidResource("resource has no resourceType")
    try:
        model = get_fhir_model_class(resource_type)
    except (KeyError, ValueError) as exc:
        raise InvalidResource(f"{resource_type!r} is not an R4B resource type") from exc
    try:
        model.model_validate(resource)
    except ValidationError as exc:
        raise InvalidResource(str(exc)) from exc
    return resource
