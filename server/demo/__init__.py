"""The demo: its fixture, its patients' physiology and their history."""
