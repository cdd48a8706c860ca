"""Stored rows as FHIR resources, and FHIR search as SQL with keyset paging."""
