"""Alembic environment: migrates the database the settings name, or a connection given to it."""

from logging.config import fileConfig

from alembic import context
from alembic.operations.ops import MigrationScript
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Connection

import app.db.models  # noqa: F401  (registers every table on Base.metadata)
from app.core.config import get_settings
from app.db.base import Base
from app.db.migrations import include_object
from app.db.session import build_engine, is_postgres

config = context.config
if config.config_file_name is not None and not config.attributes.get("skip_logging"):
    fileConfig(config.config_file_name, disable_existing_loggers=False)

target_metadata = Base.metadata


def _skip_empty_autogenerate(
    _context: MigrationContext, _revision: object, directives: list[MigrationScript]
) -> None:
    # `alembic revision --autogenerate` with models and migrations agreeing writes nothing.
    if config.cmd_opts is not None and getattr(config.cmd_opts, "autogenerate", False):
        script = directives[0]
        if script.upgrade_ops is not None and script.upgrade_ops.is_empty():
            directives[:] = []
            print("No changes in the models: no migration written")


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        # SQLite cannot ALTER most things; batch mode rebuilds the table instead.
        render_as_batch=not is_postgres(connection),
        compare_type=True,
        include_object=include_object,
        process_revision_directives=_skip_empty_autogenerate,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    url = config.attributes.get("url") or get_settings().direct_database_url
    engine = build_engine(url)
    try:
        with engine.connect() as conn:
            if not is_postgres(conn):
                # A batch migration rebuilds a table (copy, drop, rename); with foreign keys on,
                # dropping a referenced table fails at commit. The pragma only takes effect
                # outside a transaction, so it goes to the driver before SQLAlchemy begins one.
                conn.connection.driver_connection.execute("PRAGMA foreign_keys=OFF")  # type: ignore[union-attr]
            _run(conn)
            conn.commit()
    finally:
        engine.dispose()


if context.is_offline_mode():
    raise SystemExit("offline migrations are not supported; run `zariz migrate`")
run_migrations_online()
