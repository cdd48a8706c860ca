"""Pure FHIR mapping."""
