"""Replay a synthetic cohort through the rules and score them."""
