"""Phone numbers in the templates: `number|phone` as people read it, `number|tel` to call it."""

from __future__ import annotations

from telekol.clinician_ui.blueprint import bp
from telekol.server.care import telephone

bp.add_app_template_filter(telephone.shown, "phone")
bp.add_app_template_filter(telephone.tel_uri, "tel")
