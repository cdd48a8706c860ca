"""Per-app services and the per-request database session."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from flask import current_app, g
from sqlalchemy.engine import Engine
from sqlmodel import Session
from telekol.server.accounts import TokenSigner
from telekol.server.config import Settings

if TYPE_CHECKING:
    from telekol.server.web.live import LiveBridge


@dataclass
class AppServices:
    """What every view needs: settings, the engine, the token signer, the live bridge."""

    settings: Settings
    engine: Engine
    tokens: TokenSigner
    bridge: LiveBridge | None = None


def services() -> AppServices:
    """Return the current app's services."""
    return current_app.extensions["telekol"]


def db() -> Session:
    """Return this request's database session (closed at teardown)."""
    if "db" not in g:
        g.db = Session(services().engine, expire_on_commit=False)
    return g.db


def close_db(_error: BaseException | None = None) -> None:
    """Close the request's session, if one was opened."""
    session = g.pop("db", None)
    if session is not None:
        session.close()
