"""No sensitive categories: the schema has no column for them, and every text column of a
member's data is bounded (a length, a pattern without repetition, or a fixed set)."""

from __future__ import annotations

import re

import asyncpg

# Stems of the GDPR's special categories (art. 9 and 10), matched against each word of a
# table or column name.
FORBIDDEN = ("health", "medic", "diagnos", "religio", "belief", "faith", "ethnic", "race",
             "racial", "politic", "sexual", "orientation", "conviction", "criminal", "offence",
             "biometric", "genetic", "disab", "tradeunion", "union")


async def test_no_table_or_column_is_named_after_a_sensitive_category(
        conn: asyncpg.Connection) -> None:
    rows = await conn.fetch("SELECT table_name, column_name FROM information_schema.columns "
                            "WHERE table_schema = 'public'")
    bad = [f"{t}.{c}" for t, c in rows
           if any(word.startswith(FORBIDDEN) for word in re.split(r"[_\W]+", f"{t}_{c}"))]
    assert not bad


def bounded(definition: str) -> bool:
    if "length(" in definition or "= ANY (ARRAY[" in definition or "<@" in definition:
        return True
    pattern = re.search(r"~ '([^']*)'", definition)
    return bool(pattern and pattern.group(1).endswith("$")
                and not re.search(r"[*+]", pattern.group(1)))


async def test_every_text_column_of_a_members_data_is_bounded(
        conn: asyncpg.Connection) -> None:
    tables = {r[0] for r in await conn.fetch("""
        SELECT conrelid::regclass::text FROM pg_constraint
        WHERE contype = 'f' AND confrelid IN ('members'::regclass, 'wallet_accounts'::regclass)
        """)} | {"members", "wallet_accounts"}
    unbounded = []
    for table in sorted(tables):
        columns = await conn.fetch("""
            SELECT a.attname, a.attnum FROM pg_attribute a
            WHERE a.attrelid = $1::regclass AND a.attnum > 0 AND NOT a.attisdropped
              AND a.atttypid IN ('text'::regtype, 'text[]'::regtype, 'varchar'::regtype)
              AND a.atttypmod < 0""", table)
        for name, attnum in columns:
            checks = await conn.fetch("""
                SELECT pg_get_constraintdef(oid) FROM pg_constraint
                WHERE conrelid = $1::regclass AND contype = 'c' AND $2 = ANY(conkey)""",
                                      table, attnum)
            if not any(bounded(c[0]) for c in checks):
                unbounded.append(f"{table}.{name}")
    assert not unbounded, f"add a CHECK bounding these columns: {unbounded}"
