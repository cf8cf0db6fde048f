"""Names the unique constraint an IntegrityError broke, on Postgres and on SQLite alike."""

import re

from sqlalchemy.exc import IntegrityError

from app.db.base import Base

_SQLITE_UNIQUE = re.compile(r"UNIQUE constraint failed: (.+)")


def violated_constraint(exc: IntegrityError) -> str | None:
    diag = getattr(exc.orig, "diag", None)
    if diag is not None:  # psycopg names the constraint
        name = getattr(diag, "constraint_name", None)
        return str(name) if name else None
    match = _SQLITE_UNIQUE.search(str(exc.orig))
    if not match:
        return None
    # SQLite says "table.col, table.col"; find the index or constraint with those columns.
    cols = [part.strip().split(".") for part in match.group(1).split(",")]
    table_name = cols[0][0]
    wanted = [c[1] for c in cols]
    table = Base.metadata.tables.get(table_name)
    if table is None:
        return None
    for index in table.indexes:
        if index.unique and [c.name for c in index.columns] == wanted:
            return str(index.name)
    for constraint in table.constraints:
        columns = [c.name for c in getattr(constraint, "columns", [])]
        if columns == wanted and constraint.name:
            return str(constraint.name)
    return None
