"""UPDATE and DELETE statements whose caller needs to know how many rows they changed."""

from sqlalchemy import CursorResult
from sqlalchemy.orm import Session
from sqlalchemy.sql.dml import UpdateBase


def changed_rows(session: Session, statement: UpdateBase) -> int:
    """Runs the statement in the session's transaction; the number of rows it matched."""
    result = session.execute(statement)
    # An UPDATE or DELETE without RETURNING always yields a CursorResult; Session.execute is
    # typed for every statement, so this narrows it rather than ignoring the type.
    assert isinstance(result, CursorResult)
    return result.rowcount
