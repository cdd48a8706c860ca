"""The FHIR door at /fhir: one module per resource family."""
