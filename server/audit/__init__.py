"""The audit log: who did what to which patient's data, and its digest."""
