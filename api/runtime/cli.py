"""The `loyalty` command line: serve, migrate, seed the demo, mint tokens, run jobs."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import sys
import uuid
from collections.abc import Sequence
from pathlib import Path

from api.config import Settings


def _settings() -> Settings:
    return Settings.from_env()


def cmd_serve(args: argparse.Namespace) -> int:
    from api.runtime.launcher import serve

    return serve(host=args.host, port=args.port, workers=args.workers,
                 throwaway_db=args.throwaway_db, data_dir=Path(_settings().data_dir),
                 seed_demo=args.demo)


def cmd_migrate(_: argparse.Namespace) -> int:
    from api.runtime.launcher import database_for_cli
    from migrations.runner import MigrationError, migrate

    with database_for_cli(Path(_settings().data_dir)) as dsn:
        try:
            applied = asyncio.run(migrate(dsn))
        except MigrationError as exc:
            print(f"refused: {exc}", file=sys.stderr)
            return 1
    print("applied: " + ", ".join(applied) if applied else "nothing to apply: schema is current")
    return 0


def cmd_demo(_: argparse.Namespace) -> int:
    from api.runtime.demo import seed
    from api.runtime.launcher import database_for_cli
    from migrations.runner import migrate

    with database_for_cli(Path(_settings().data_dir)) as dsn:
        asyncio.run(migrate(dsn))
        print(asyncio.run(seed(dsn)))
    return 0


def cmd_token(args: argparse.Namespace) -> int:
    from api.auth.keys import load_or_create
    from api.auth.tokens import TokenService

    s = _settings()
    if args.role != "admin" and not args.program_id:
        print("--program-id is required for every role but admin", file=sys.stderr)
        return 2
    tokens = TokenService(load_or_create(s.keys_file), issuer=s.jwt_issuer,
                          access_ttl_s=args.ttl or s.access_token_ttl_s,
                          refresh_ttl_s=s.refresh_token_ttl_s, card_ttl_s=s.qr_token_ttl_s)
    print(tokens.mint_access(
        sub=uuid.UUID(args.sub) if args.sub else uuid.uuid4(), role=args.role,
        program_id=uuid.UUID(args.program_id) if args.program_id else None,
        store_ids=[uuid.UUID(x) for x in args.store_id]))
    return 0


def cmd_admin_create(args: argparse.Namespace) -> int:
    from api.runtime.accounts import create_admin
    from api.runtime.launcher import database_for_cli
    from wallet.kernel.hashing import Hasher

    s = _settings()
    password = sys.stdin.readline().strip() if args.password_stdin else getpass.getpass()
    if len(password) < 10:
        print("the password needs at least 10 characters", file=sys.stderr)
        return 2
    hasher = Hasher(memory_kib=s.password_memory_kib, time_cost=s.password_time_cost)
    with database_for_cli(Path(s.data_dir)) as dsn:
        admin_id = asyncio.run(create_admin(dsn, args.email, hasher.hash(password)))
    print(f"admin {args.email} created: {admin_id}")
    return 0


def cmd_keys_rotate(_: argparse.Namespace) -> int:
    from api.auth.keys import load_or_create, rotate

    s = _settings()
    load_or_create(s.keys_file)
    print(f"new signing key: {rotate(s.keys_file)} (restart the server to use it)")
    return 0


def cmd_keys_list(_: argparse.Namespace) -> int:
    from api.auth.keys import describe, load_or_create

    s = _settings()
    load_or_create(s.keys_file)
    print(describe(s.keys_file))
    return 0


def cmd_keys_retire(args: argparse.Namespace) -> int:
    from api.auth.keys import retire

    try:
        retire(_settings().keys_file, args.kid)
    except ValueError as exc:
        print(exc, file=sys.stderr)
        return 2
    print(f"key {args.kid} retired: tokens it signed stop verifying once servers restart")
    return 0


def cmd_job(args: argparse.Namespace) -> int:
    from api.jobs import UnknownJob, run_job
    from api.runtime.launcher import database_for_cli

    s = _settings()
    with database_for_cli(Path(s.data_dir)) as dsn:
        try:
            print(asyncio.run(run_job(args.job, dsn, s)))
        except UnknownJob as exc:
            print(exc, file=sys.stderr)
            return 2
    return 0


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="loyalty", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)

    s = sub.add_parser("serve", help="serve the API (starts an embedded PostgreSQL if needed)")
    s.add_argument("--host", default="127.0.0.1")
    s.add_argument("--port", type=int, default=8000)
    s.add_argument("--workers", type=int, default=1)
    s.add_argument("--throwaway-db", action="store_true",
                   help="a fresh embedded database, deleted on exit")
    s.add_argument("--demo", action="store_true", help="seed the demo program first")
    s.set_defaults(func=cmd_serve)

    sub.add_parser("migrate", help="apply pending migrations").set_defaults(func=cmd_migrate)
    sub.add_parser("demo", help="seed the demo program (idempotent)").set_defaults(func=cmd_demo)

    t = sub.add_parser("token", help="print an access token the server accepts")
    t.add_argument("--role", required=True, choices=["admin", "manager", "staff", "member"])
    t.add_argument("--program-id")
    t.add_argument("--sub", help="subject id (default: a random one)")
    t.add_argument("--store-id", action="append", default=[], help="repeat for several stores")
    t.add_argument("--ttl", type=int, help="lifetime in seconds")
    t.set_defaults(func=cmd_token)

    a = sub.add_parser("admin", help="operator accounts")
    asub = a.add_subparsers(dest="admin_command", required=True)
    ac = asub.add_parser("create", help="create an admin account")
    ac.add_argument("--email", required=True)
    ac.add_argument("--password-stdin", action="store_true")
    ac.set_defaults(func=cmd_admin_create)

    k = sub.add_parser("keys", help="signing keys")
    ksub = k.add_subparsers(dest="keys_command", required=True)
    ksub.add_parser("rotate", help="add a new signing key").set_defaults(func=cmd_keys_rotate)
    ksub.add_parser("list", help="show the signing kid and every known kid"
                    ).set_defaults(func=cmd_keys_list)
    kr = ksub.add_parser("retire", help="forget an old key once its tokens have expired")
    kr.add_argument("kid")
    kr.set_defaults(func=cmd_keys_retire)

    for job, text in (("expire", "expire points lots past their date"),
                      ("purge", "delete data past its retention period")):
        j = sub.add_parser(job, help=text)
        j.set_defaults(func=cmd_job, job=job)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
