"""The pages' one blueprint: every view module adds its routes to it."""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("ui", __name__, template_folder="templates", static_folder="static",
               static_url_path="/static")
