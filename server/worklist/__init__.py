"""The work list: one row per patient, a patient's status, trends."""
