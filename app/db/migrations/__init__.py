"""The schema's migrations, shipped inside the package, and the one Alembic configuration."""

from functools import lru_cache
from pathlib import Path

from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection

HERE = Path(__file__).resolve().parent


def alembic_config() -> Config:
    """Alembic's settings without an ini file, so an installed wheel migrates on its own."""
    config = Config()
    config.set_main_option("script_location", str(HERE))
    config.set_main_option("path_separator", "os")
    # Numbered revisions (docs/decisions.md): `make migration` passes --rev-id.
    config.set_main_option("file_template", "%%(rev)s_%%(slug)s")
    return config


# Created by migration 0010 only where the pg_trgm extension is available, so not in the models.
CONDITIONAL_INDEXES = frozenset({"orders_phone_digits_trgm_idx"})


def include_object(
    _obj: object, name: str | None, type_: str, _reflected: bool, _compare_to: object
) -> bool:
    """What autogenerate and `alembic check` compare: all but the conditional indexes."""
    return not (type_ == "index" and name in CONDITIONAL_INDEXES)


@lru_cache
def head_revision() -> str | None:
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def current_revision(connection: Connection) -> str | None:
    return MigrationContext.configure(connection).get_current_revision()


def unmigrated(connection: Connection) -> str | None:
    """Why this database does not match the code ("at revision X, ..."), or None when it does."""
    current = current_revision(connection)
    head = head_revision()
    if current == head:
        return None
    return f"database at revision {current or 'none'}, code expects {head}"
