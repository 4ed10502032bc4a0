"""`loyalty demo` / `make run`: seed the demo program (`geo/demo_repo.py`: a small coffee chain
in Paris) and print how to try it."""

from __future__ import annotations

import asyncpg

from api.config import Settings
from geo.demo_repo import (
    CARD_NUMBER,
    MANAGER_EMAIL,
    MANAGER_PASSWORD,
    MEMBER_EMAIL,
    MEMBER_PASSWORD,
    MEMBER_PIN,
    PROGRAM_ID,
    REWARDS,
    STAFF_EMAIL,
    STAFF_PASSWORD,
    STORES,
    seed_rows,
)
from wallet.kernel.hashing import Hasher


async def seed(dsn: str) -> str:
    """Seed the demo program into the (migrated) database at `dsn`; returns a summary."""
    defaults = Settings()
    hasher = Hasher(memory_kib=defaults.password_memory_kib,
                    time_cost=defaults.password_time_cost)
    conn = await asyncpg.connect(dsn)
    try:
        await seed_rows(conn, hasher=hasher, max_extent_m=defaults.max_zone_extent_m)
    finally:
        await conn.close()
    return summary()


def summary() -> str:
    login = ('POST <API>/v1/auth/token, body '
             f"'{{\"grant_type\": \"password\", \"program_id\": \"{PROGRAM_ID}\", "
             f"\"email\": \"{MANAGER_EMAIL}\", \"password\": \"{MANAGER_PASSWORD}\"}}'")
    return "\n".join([
        f"Café Lumière (EUR, Europe/Paris): program_id {PROGRAM_ID}",
        f"  {len(STORES)} stores in Paris: {', '.join(code for _, code, _, _ in STORES)}",
        f"  {len(REWARDS)} rewards: {', '.join(r.name for r in REWARDS)}",
        f"  manager  {MANAGER_EMAIL} / {MANAGER_PASSWORD}",
        f"  staff    {STAFF_EMAIL} / {STAFF_PASSWORD} (stores OPERA, LOUVRE)",
        f"  member   {MEMBER_EMAIL} / {MEMBER_PASSWORD} (card {CARD_NUMBER}, PIN {MEMBER_PIN},"
        " location offers consented)",
        f"  log in:  {login}  (API below)",
        "  admin:   loyalty token --role admin",
    ])
