"""`loyalty demo` / `make run`: seed the demo program (`geo/demo_repo.py`: a small coffee chain
in Paris) and print how to try it."""

from __future__ import annotations

import asyncpg

from api.config import Settings, privacy_notice
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
    DemoFigures,
    figures,
    seed_rows,
)
from wallet.kernel.hashing import Hasher

__all__ = ["CARD_NUMBER", "MANAGER_EMAIL", "MANAGER_PASSWORD", "MEMBER_EMAIL",
           "MEMBER_PASSWORD", "MEMBER_PIN", "PROGRAM_ID", "REWARDS", "STAFF_EMAIL",
           "STAFF_PASSWORD", "seed", "summary"]


async def seed(dsn: str) -> str:
    """Seed the demo program into the (migrated) database at `dsn`; returns a summary of the
    program as it is now (a restart shows the stores and members added or removed since)."""
    defaults = Settings()
    hasher = Hasher(memory_kib=defaults.password_memory_kib,
                    time_cost=defaults.password_time_cost)
    conn = await asyncpg.connect(dsn)
    try:
        await seed_rows(conn, hasher=hasher, max_extent_m=defaults.max_zone_extent_m,
                        notice=privacy_notice(Settings.from_env()))
        now = await figures(conn)
    finally:
        await conn.close()
    return summary(now)


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def summary(f: DemoFigures | None) -> str:
    """The banner's demo lines, from the program's current figures."""
    if f is None:
        return f"the demo program {PROGRAM_ID} was deleted from this database"
    login = ('POST <API>/v1/auth/token, body '
             f"'{{\"grant_type\": \"password\", \"program_id\": \"{PROGRAM_ID}\", "
             f"\"email\": \"{MANAGER_EMAIL}\", \"password\": \"{MANAGER_PASSWORD}\"}}'")
    codes = ", ".join(f.store_codes) if f.store_codes else "none"
    staff_codes = ", ".join(f.staff_store_codes) or "none left"
    return "\n".join([
        f"{f.name} ({f.currency}, {f.timezone}): program_id {PROGRAM_ID}",
        f"  {_plural(len(f.store_codes), 'store')}: {codes}",
        f"  {_plural(len(f.rewards), 'reward')}: {', '.join(f.rewards) or 'none'}",
        f"  {_plural(f.members, 'member')}, {_plural(f.active_campaigns, 'active campaign')}",
        f"  manager  {MANAGER_EMAIL} / {MANAGER_PASSWORD}",
        f"  staff    {STAFF_EMAIL} / {STAFF_PASSWORD} (stores {staff_codes})",
        f"  member   {MEMBER_EMAIL} / {MEMBER_PASSWORD} (card {CARD_NUMBER}, PIN {MEMBER_PIN},"
        " location offers consented)",
        f"  log in:  {login}  (API below)",
        "  admin:   loyalty token --role admin",
    ])
