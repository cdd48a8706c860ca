"""Alerts: the pure rules and triage, the rules' inputs, the alert workflow."""
