"""Readiness: the database answers and is migrated to the newest revision."""

from functools import lru_cache
from pathlib import Path

from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import text
from sqlalchemy.orm import Session

ROOT = Path(__file__).resolve().parents[2]


@lru_cache
def head_revision() -> str | None:
    config = Config(str(ROOT / "alembic.ini"))
    config.set_main_option("script_location", str(ROOT / "alembic"))
    return ScriptDirectory.from_config(config).get_current_head()


def readiness(session: Session) -> tuple[bool, str]:
    try:
        current = session.scalar(text("SELECT version_num FROM alembic_version"))
    except Exception:
        session.rollback()
        return False, "database unreachable or not migrated"
    session.rollback()
    if current != head_revision():
        return False, f"database at revision {current}, code expects {head_revision()}"
    return True, "ok"
