"""Readiness: the database answers and is migrated to the newest revision."""

from sqlalchemy.orm import Session

from app.db.migrations import head_revision, unmigrated

__all__ = ["head_revision", "readiness"]


def readiness(session: Session) -> tuple[bool, str]:
    try:
        mismatch = unmigrated(session.connection())
    except Exception:
        session.rollback()
        return False, "database unreachable or not migrated"
    session.rollback()
    if mismatch is not None:
        return False, mismatch
    return True, "ok"
