"""The benchmarks: `telekol bench`, `bench-fhir`, `bench-http`, `bench-worklist`."""
