"""Apply the numbered, forward-only `NNNN_name.sql` files of a directory, each exactly once.

Why this shape: several processes (workers, CLI runs, CI jobs) may start on the same database
at once, and `CREATE TABLE IF NOT EXISTS` is not safe concurrently. So the whole run holds one
session advisory lock; each file runs in its own transaction together with the row that
records it in `schema_migrations` (a failure leaves neither). An applied file is pinned by the
sha256 of its bytes: editing it afterwards is refused before anything is applied, since the
database would silently differ from what the file says. To change the schema, add a file.

A file must not contain transaction control (BEGIN/COMMIT) or statements that cannot run
inside a transaction block (`CREATE INDEX CONCURRENTLY`, `VACUUM`).
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import NamedTuple

import asyncpg

from wallet.kernel.db import Conn

__all__ = ["DEFAULT_DIR", "EditedMigration", "Migration", "MigrationError", "discover",
           "migrate", "pending"]

DEFAULT_DIR = Path(__file__).parent
"""The project's migrations, shipped as package data next to this module."""

# Four digits, then an optional letter: a second file of one number ("0010b_...") runs after
# the first ("0010_..."), so work given one number can still add a file after shipping one.
NAME = re.compile(r"^(?P<number>\d{4}[a-z]?)_[a-z0-9_]+\.sql$")
LOCK_KEY = 0x6C6F79616C7479  # "loyalty": one advisory lock for every migration run


class MigrationError(Exception):
    """A migration could not be read or applied; the message names the file."""


class EditedMigration(MigrationError):
    """An applied migration file no longer matches the checksum recorded when it ran."""

    def __init__(self, name: str, recorded: str, current: str) -> None:
        super().__init__(
            f"migration {name} was edited after it was applied (sha256 {recorded[:12]}… in the "
            f"database, {current[:12]}… on disk): migrations are forward-only, so restore the "
            "file and put the change in a new numbered file")
        self.name = name


class Migration(NamedTuple):
    name: str
    sql: str
    checksum: str  # sha256 hex of the file's bytes


def _files(directory: Path) -> list[Path]:
    """The directory's `*.sql` files in order; a bad name or a reused number raises."""
    found: dict[str, Path] = {}
    for path in sorted(directory.iterdir()):
        if path.suffix.lower() != ".sql":
            continue
        if not (name := NAME.match(path.name)):
            raise MigrationError(f"{path}: a migration's name must look like 0001_name.sql "
                                 "(four digits, an optional letter, an underscore, then "
                                 "lowercase a-z, 0-9, _)")
        number = name["number"]
        if (twin := found.get(number)) is not None:
            raise MigrationError(f"{twin.name} and {path.name} share the number {number}")
        found[number] = path
    return list(found.values())


def discover(directory: Path = DEFAULT_DIR) -> list[Migration]:
    """The migrations of `directory` in order, read as UTF-8; bad names or bytes raise."""
    migrations = []
    for path in _files(directory):
        data = path.read_bytes()
        try:
            sql = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise MigrationError(f"{path}: not valid UTF-8 ({exc})") from None
        migrations.append(Migration(path.name, sql, hashlib.sha256(data).hexdigest()))
    return migrations


CREATE_TABLE = """
CREATE TABLE IF NOT EXISTS schema_migrations (
    name        text PRIMARY KEY,
    checksum    text NOT NULL,
    applied_at  timestamptz NOT NULL DEFAULT now()
)"""
APPLIED = "SELECT name, checksum FROM schema_migrations"
RECORD = "INSERT INTO schema_migrations (name, checksum) VALUES ($1, $2)"


async def migrate(dsn: str, directory: Path = DEFAULT_DIR) -> list[str]:
    """Apply the pending migrations; returns the names applied by this call, in order.

    Safe to run from several processes at once: the others wait on the lock, then find
    nothing to do. Raises EditedMigration before applying anything if an applied file changed,
    MigrationError naming the file if one fails (files before it stay applied).
    """
    migrations = discover(directory)  # bad names fail before we touch the database
    conn: asyncpg.Connection = await asyncpg.connect(dsn)
    try:  # a session lock: closing the connection releases it, whatever happened
        await conn.execute("SELECT pg_advisory_lock($1)", LOCK_KEY)
        await conn.execute(CREATE_TABLE)
        applied = {row["name"]: row["checksum"] for row in await conn.fetch(APPLIED)}
        for m in migrations:
            if m.name in applied and applied[m.name] != m.checksum:
                raise EditedMigration(m.name, applied[m.name], m.checksum)
        done: list[str] = []
        for m in migrations:
            if m.name not in applied:
                await _apply(conn, m)
                done.append(m.name)
        return done
    finally:
        await conn.close()


async def _apply(conn: asyncpg.Connection, m: Migration) -> None:
    try:
        async with conn.transaction():
            await conn.execute(m.sql)  # no arguments: the simple protocol runs many statements
            await conn.execute(RECORD, m.name, m.checksum)
    except asyncpg.PostgresError as exc:  # str(exc) carries PostgreSQL's DETAIL line
        raise MigrationError(f"migration {m.name} failed: {type(exc).__name__}: {exc}\n"
                             "Nothing of this file was applied.") from exc


PENDING_TABLE = "SELECT to_regclass('schema_migrations') IS NOT NULL"


async def pending(conn: Conn, directory: Path = DEFAULT_DIR) -> list[str]:
    """Names of the migrations not applied yet on `conn`'s database (for readiness checks).

    Cheap enough for every probe: lists file names without reading them, takes no lock and
    does not verify checksums (`migrate` does). Raises MigrationError for a badly named file.
    """
    names = [path.name for path in _files(directory)]
    if not await conn.fetchval(PENDING_TABLE):
        return names
    applied = {row["name"] for row in await conn.fetch(APPLIED)}
    return [name for name in names if name not in applied]
