"""The `zariz` command: serve, migrate, seed-demo, create-admin, worker."""

import argparse
import getpass
import signal
import sys

from alembic import command
from pydantic import ValidationError

from app.core.config import Environment, PushWorkerMode, Settings, get_settings
from app.core.errors import ZarizError
from app.db.migrations import alembic_config, unmigrated


class Refused(Exception):
    """A reason to stop before starting, said in one line (exit status 2)."""


def cmd_migrate(_args: argparse.Namespace) -> int:
    command.upgrade(alembic_config(), "head")
    return 0


def require_migrated() -> None:
    from app.db.session import get_engine

    with get_engine().connect() as conn:
        mismatch = unmigrated(conn)
    if mismatch is not None:
        raise Refused(f"{mismatch}: run `zariz migrate`")


def require_apns(settings: Settings) -> None:
    from app.push.apns import ApnsConfigError, check_apns

    try:
        check_apns(settings)
    except ApnsConfigError as exc:
        raise Refused(f"push: {exc}") from exc


def cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    from app.server import serve_refusal, server_options

    settings = get_settings()
    workers = args.workers
    if settings.is_sqlite and workers > 1:
        print("SQLite runs one process (the in-process bus); use Postgres for --workers > 1")
        workers = 1
    refusal = serve_refusal(settings, host=args.host, workers=workers)
    if refusal:
        print(f"zariz serve: {refusal}", file=sys.stderr)
        return 2
    if settings.push_worker == PushWorkerMode.INLINE:
        require_apns(settings)  # the inline worker would otherwise skip every push
    require_migrated()
    uvicorn.run(
        "app.main:create_app",
        factory=True,
        host=args.host,
        port=args.port,
        workers=workers,
        **server_options(settings),
    )
    return 0


def cmd_create_admin(args: argparse.Namespace) -> int:
    from app.core.errors import ZarizError
    from app.db.models import Role
    from app.db.session import get_sessionmaker
    from app.services.users import new_user

    password = args.password if args.password is not None else read_password()
    with get_sessionmaker()() as session:
        try:
            user = new_user(
                session,
                role=Role.ADMIN,
                name=args.name,
                email=args.email,
                phone=args.phone,
                password=password,
            )
        except ZarizError as exc:  # the password policy, a taken email: one line, no traceback
            print(f"zariz create-admin: {exc.detail}", file=sys.stderr)
            return 2
        session.commit()
        print(f"admin {user.id} created: {user.email or user.phone}")
    return 0


def read_password() -> str:
    """Asked for, not passed: a password on the command line lands in shell history and `ps`."""
    if not sys.stdin.isatty():
        return sys.stdin.readline().rstrip("\n")
    password = getpass.getpass("Password: ")
    if getpass.getpass("Password again: ") != password:
        raise Refused("the passwords do not match")
    return password


def cmd_seed_demo(_args: argparse.Namespace) -> int:
    if get_settings().zariz_env is Environment.PRODUCTION:
        print("seed-demo is refused in production", file=sys.stderr)
        return 2
    from app.db.session import get_sessionmaker
    from app.services.demo import seed_demo

    with get_sessionmaker()() as session:
        logins = seed_demo(session)
    print("Demo logins:")
    for role, identifier, password in logins:
        print(f"  {role:8} {identifier:28} {password}")
    return 0


def cmd_worker(args: argparse.Namespace) -> int:
    from app.core.logging import configure_logging
    from app.db.session import get_engine
    from app.push.apns import ApnsConfigError
    from app.push.worker import PushWorker, run_until_signalled

    settings = get_settings()
    configure_logging(settings.log_level)
    try:
        worker = PushWorker(settings=settings, engine=get_engine())
    except ApnsConfigError as exc:
        print(f"push worker: {exc}", file=sys.stderr)
        return 2
    require_migrated()
    if args.metrics_port is not None:
        from prometheus_client import start_http_server

        start_http_server(args.metrics_port, addr=args.metrics_host)
    # SIGTERM (docker stop, systemd) and Ctrl-C: finish the sends in flight, record them, exit.
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: worker.stop())
    return 0 if run_until_signalled(worker) else 1


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="zariz", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="serve the API with uvicorn")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--workers", type=int, default=1)
    serve.set_defaults(func=cmd_serve)
    sub.add_parser("migrate", help="migrate the database to the newest revision").set_defaults(
        func=cmd_migrate
    )
    sub.add_parser("seed-demo", help="create demo store, users and orders").set_defaults(
        func=cmd_seed_demo
    )
    admin = sub.add_parser("create-admin", help="create an admin account")
    admin.add_argument("--name", required=True)
    admin.add_argument("--email")
    admin.add_argument("--phone")
    admin.add_argument("--password", help="asked for when not given (stdin when not a terminal)")
    admin.set_defaults(func=cmd_create_admin)
    worker = sub.add_parser("worker", help="send push notifications from the outbox to APNs")
    worker.add_argument("--metrics-port", type=int, help="serve Prometheus metrics on this port")
    worker.add_argument("--metrics-host", default="127.0.0.1")
    worker.set_defaults(func=cmd_worker)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        result: int = args.func(args)
    except ValidationError as exc:
        # The settings refused themselves (the production guard): one line, no traceback.
        reasons = "; ".join(
            " ".join(str(part).upper() for part in e["loc"])
            + ": " * bool(e["loc"])
            + str(e["msg"]).removeprefix("Value error, ")
            for e in exc.errors()
        )
        print(f"zariz: settings refused: {reasons}", file=sys.stderr)
        return 2
    except Refused as exc:
        print(f"zariz {args.command}: {exc}", file=sys.stderr)
        return 2
    except ZarizError as exc:
        # A domain refusal (a duplicate email, a weak password): what it says, not a traceback.
        print(f"zariz {args.command}: {exc.detail}", file=sys.stderr)
        return 2
    return result


if __name__ == "__main__":
    sys.exit(main())
