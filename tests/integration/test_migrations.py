"""The migration runner on a real PostgreSQL: each test migrates its own empty database."""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
import sys
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest

from migrations.runner import (
    DEFAULT_DIR,
    EditedMigration,
    MigrationError,
    discover,
    migrate,
    pending,
)

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
async def empty_db(pg_server: str) -> AsyncIterator[str]:
    """DSN of a new, empty database (not the session's migrated template), dropped after."""
    name = f"mig_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(pg_server)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
        yield urlunsplit(urlsplit(pg_server)._replace(path=f"/{name}"))
        await admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
    finally:
        await admin.close()


@pytest.fixture
def files(tmp_path: Path) -> Path:
    """A migrations directory with two files; the first sleeps so concurrent runs overlap."""
    d = tmp_path / "migrations"
    d.mkdir()
    (d / "0001_first.sql").write_text(
        "SELECT pg_sleep(0.2);\nCREATE TABLE first_t (id int PRIMARY KEY);\n")
    (d / "0002_second.sql").write_text(
        "-- é: files are UTF-8\nCREATE TABLE second_t (id int);\n"
        "INSERT INTO second_t VALUES (1);\n", encoding="utf-8")
    (d / "README.md").write_text("not a migration: ignored")
    return d


async def rows(dsn: str, sql: str) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(dsn)
    try:
        return await conn.fetch(sql)
    finally:
        await conn.close()


async def exists(dsn: str, table: str) -> bool:
    found = await rows(dsn, f"SELECT to_regclass('{table}') IS NOT NULL AS found")
    return bool(found[0]["found"])


async def test_first_run_applies_every_file_in_order_and_second_run_applies_nothing(
        empty_db: str, files: Path) -> None:
    assert await migrate(empty_db, files) == ["0001_first.sql", "0002_second.sql"]
    assert await migrate(empty_db, files) == []
    assert [r["id"] for r in await rows(empty_db, "SELECT id FROM second_t")] == [1]


async def test_applied_files_are_recorded_with_the_sha256_of_their_bytes(
        empty_db: str, files: Path) -> None:
    expected = [(name, hashlib.sha256((files / name).read_bytes()).hexdigest())
                for name in ("0001_first.sql", "0002_second.sql")]
    await migrate(empty_db, files)
    recorded = await rows(empty_db, "SELECT name, checksum, applied_at FROM schema_migrations "
                                    "ORDER BY name")
    assert [(r["name"], r["checksum"]) for r in recorded] == expected
    assert all(r["applied_at"] is not None for r in recorded)


async def test_an_edited_applied_migration_is_refused_naming_it_before_anything_applies(
        empty_db: str, files: Path) -> None:
    await migrate(empty_db, files)
    (files / "0002_second.sql").write_text("CREATE TABLE second_t (id bigint);\n")
    (files / "0003_third.sql").write_text("CREATE TABLE third_t (id int);\n")
    with pytest.raises(EditedMigration, match=re.escape("0002_second.sql was edited")) as refused:
        await migrate(empty_db, files)
    assert refused.value.name == "0002_second.sql"
    assert isinstance(refused.value, MigrationError)
    assert not await exists(empty_db, "third_t")


async def test_a_failing_migration_names_its_file_and_leaves_no_trace(
        empty_db: str, files: Path) -> None:
    (files / "0003_broken.sql").write_text("CREATE TABLE half_t (id int);\nSELECT 1/0;\n")
    failed = re.escape("0003_broken.sql failed: DivisionByZeroError")
    with pytest.raises(MigrationError, match=failed):
        await migrate(empty_db, files)
    assert [r["name"] for r in await rows(empty_db, "SELECT name FROM schema_migrations "
                                                    "ORDER BY name")] == [
        "0001_first.sql", "0002_second.sql"]
    assert not await exists(empty_db, "half_t")


@pytest.mark.parametrize("bad", ["1_init.sql", "00001_init.sql", "0001-init.sql",
                                 "0001_Init.sql", "0001_init.SQL", "init.sql", "0001_.sql",
                                 "0001_in it.sql"])
async def test_a_badly_named_file_is_refused_before_touching_the_database(
        empty_db: str, files: Path, bad: str) -> None:
    (files / bad).write_text("SELECT 1;\n")
    refused = re.escape(f"{bad}: a migration's name must look like")
    with pytest.raises(MigrationError, match=refused):
        await migrate(empty_db, files)
    assert not await exists(empty_db, "schema_migrations")


def test_two_files_with_one_number_are_refused(files: Path) -> None:
    (files / "0002_again.sql").write_text("SELECT 1;\n")
    with pytest.raises(MigrationError, match=re.escape("0002_again.sql and 0002_second.sql share")):
        discover(files)


def test_a_letter_after_the_number_runs_a_second_file_of_that_number_after_the_first(
        files: Path) -> None:
    (files / "0002b_more.sql").write_text("SELECT 2;\n")
    (files / "0003_third.sql").write_text("SELECT 3;\n")
    assert [m.name for m in discover(files)] == [
        "0001_first.sql", "0002_second.sql", "0002b_more.sql", "0003_third.sql"]
    (files / "0002b_again.sql").write_text("SELECT 1;\n")
    with pytest.raises(MigrationError, match=re.escape("0002b_again.sql and 0002b_more.sql")):
        discover(files)


def test_a_file_that_is_not_utf8_is_refused_naming_it(files: Path) -> None:
    (files / "0003_latin1.sql").write_bytes("SELECT 'caf\xe9';\n".encode("latin-1"))
    with pytest.raises(MigrationError, match=re.escape("0003_latin1.sql: not valid UTF-8")):
        discover(files)


async def test_two_concurrent_runs_both_succeed_and_apply_each_file_once(
        empty_db: str, files: Path) -> None:
    first, second = await asyncio.gather(migrate(empty_db, files), migrate(empty_db, files))
    assert sorted([first, second]) == [[], ["0001_first.sql", "0002_second.sql"]]
    assert len(await rows(empty_db, "SELECT name FROM schema_migrations")) == 2


async def test_two_processes_migrating_at_once_both_succeed(empty_db: str, files: Path) -> None:
    code = ("import asyncio, json, sys\nfrom pathlib import Path\n"
            "from migrations.runner import migrate\n"
            "print(json.dumps(asyncio.run(migrate(sys.argv[1], Path(sys.argv[2])))))\n")
    procs = [await asyncio.create_subprocess_exec(
        sys.executable, "-c", code, empty_db, str(files), cwd=ROOT,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE) for _ in range(2)]
    outputs = [await asyncio.wait_for(p.communicate(), timeout=60) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outputs
    applied = sorted(json.loads(out) for out, _ in outputs)
    assert applied == [[], ["0001_first.sql", "0002_second.sql"]]


async def test_pending_lists_unapplied_files_until_they_are_applied(
        empty_db: str, files: Path) -> None:
    conn = await asyncpg.connect(empty_db)
    try:
        assert await pending(conn, files) == ["0001_first.sql", "0002_second.sql"]
        await migrate(empty_db, files)
        assert await pending(conn, files) == []
        (files / "0003_third.sql").write_text("SELECT 1;\n")
        assert await pending(conn, files) == ["0003_third.sql"]
    finally:
        await conn.close()


async def test_the_shipped_migrations_are_well_named_and_apply_cleanly_once(
        empty_db: str) -> None:
    shipped = [m.name for m in discover(DEFAULT_DIR)]
    assert await migrate(empty_db) == shipped
    assert await migrate(empty_db) == []


async def test_idempotency_keys_move_to_a_scope_per_caller_keeping_the_latest(
        empty_db: str, tmp_path: Path) -> None:
    """0014: "<sub>:<route>" scopes become "<sub>"; a caller's key used on two routes keeps
    its latest record (an older retry then gets a 409, never a second run)."""
    d = tmp_path / "before"
    d.mkdir()
    for m in discover():
        if m.name < "0014":
            (d / m.name).write_text(m.sql, encoding="utf-8")
    await migrate(empty_db, d)
    staff, other = uuid.uuid4(), uuid.uuid4()
    conn = await asyncpg.connect(empty_db)
    try:
        for scope, key, digest, age in (
                (f"{staff}:POST /v1/pos/purchases", "k", b"purchase", "2 hours"),
                (f"{staff}:POST /v1/pos/stored-value/top-ups", "k", b"top-up", "1 hour"),
                (f"{other}:POST /v1/pos/purchases", "k", b"other", "3 hours"),
                (f"{staff}:POST /v1/pos/scan", "only", b"scan", "1 hour")):
            await conn.execute(
                "INSERT INTO idempotency_keys (scope, key, request_hash, status_code, "
                "response_body, created_at) VALUES ($1, $2, $3, 201, '{}', "
                "now() - $4::text::interval)", scope, key, digest, age)
        d.joinpath("0014_idempotency_scope.sql").write_bytes(
            (DEFAULT_DIR / "0014_idempotency_scope.sql").read_bytes())
        assert await migrate(empty_db, d) == ["0014_idempotency_scope.sql"]
        kept = {(r["scope"], r["key"]): bytes(r["request_hash"]) for r in await conn.fetch(
            "SELECT scope, key, request_hash FROM idempotency_keys")}
    finally:
        await conn.close()
    assert kept == {(str(staff), "k"): b"top-up", (str(other), "k"): b"other",
                    (str(staff), "only"): b"scan"}
