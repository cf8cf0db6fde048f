"""Names of the people on an order's page (actors, couriers, proof uploaders), in one query."""

from collections.abc import Iterable, Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.db.models import OrderEvent, User


def names_in(
    session: Session, *, events: Sequence[OrderEvent], also: Iterable[int] = ()
) -> dict[int, str]:
    ids = (
        {e.actor_id for e in events if e.actor_id}
        | {e.courier_id for e in events if e.courier_id}
        | set(also)
    )
    if not ids:
        return {}
    rows = session.execute(select(User.id, User.name).where(User.id.in_(ids))).all()
    return dict(rows)
