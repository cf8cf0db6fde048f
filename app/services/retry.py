"""Runs a whole transaction again when the database aborted it to break a lock conflict."""

import logging
from collections.abc import Callable
from typing import TypeVar

from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from app.core.errors import TransactionConflict, lock_conflict

log = logging.getLogger("zariz.retry")

ATTEMPTS = 3

T = TypeVar("T")


def retrying(session: Session, attempt: Callable[[], T], *, attempts: int = ATTEMPTS) -> T:
    """Returns attempt(), run up to `attempts` times while it loses deadlocks or serialization.

    attempt must be one whole transaction that is safe to run again from its start: it reads
    before it decides, and nothing it did survives the rollback. The victim of a deadlock runs
    again straight away, without sleeping: the winner holds its locks until it commits, so the
    retry waits on them and then reads what the winner wrote. Other database errors, and a
    conflict on the last attempt, end the transaction and leave: the last one as 409.
    """
    for number in range(1, attempts + 1):
        try:
            return attempt()
        except OperationalError as exc:
            session.rollback()
            conflict = lock_conflict(exc)
            if conflict is None:
                raise
            if number == attempts:
                log.warning("%s on attempt %d of %d: answered 409", conflict, number, attempts)
                raise TransactionConflict() from exc
            log.info("%s on attempt %d of %d: running it again", conflict, number, attempts)
    raise AssertionError("unreachable: the last attempt returns or raises")
