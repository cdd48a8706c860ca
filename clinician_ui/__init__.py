"""The clinician and patient web pages (Danish and English), served with local assets.

Importing the package registers every page on its blueprint (`blueprint.py`); the view
modules import the blueprint from there, never this package, so no import goes in a circle.
"""

from __future__ import annotations

from pathlib import Path

from telekol.clinician_ui import (
    access_log_views,
    admin_views,
    call_links,
    care_plan_views,
    care_team_views,
    login_views,
    message_views,
    my_views,
    patient_page_views,
    patient_views,
    phone_entry_views,
    quarantine_views,
    worklist_views,
)
from telekol.clinician_ui.blueprint import bp

TRANSLATIONS_DIR = Path(__file__).resolve().parent / "translations"

__all__ = ["TRANSLATIONS_DIR", "access_log_views", "admin_views", "bp", "call_links",
           "care_plan_views", "care_team_views", "login_views", "message_views", "my_views",
           "patient_page_views", "patient_views", "phone_entry_views", "quarantine_views",
           "worklist_views"]
