"""The JSON door at /api: one module per area."""
