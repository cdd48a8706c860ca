"""Ingest: every door's readings and answers, recorded through one Recorder."""
