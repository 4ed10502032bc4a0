"""A till and its members for API tests of money: a program with two stores (made with plain
SQL, `ledger_fixtures`), a staff account for the first store, and helpers that post to
`/v1/pos/*` with an Idempotency-Key."""

from __future__ import annotations

import uuid
from typing import Any

import asyncpg
from litestar import Litestar
from support import ledger_fixtures as fx
from support.helpers import Client, bearer

from api.auth.tokens import TokenService

PIN = "12345"


class Till:
    def __init__(self, client: Client, app: Litestar, conn: asyncpg.Connection,
                 program_id: uuid.UUID, store_id: uuid.UUID, other_store: uuid.UUID) -> None:
        self.client, self.app, self.conn = client, app, conn
        self.tokens: TokenService = app.state.tokens
        self.program_id, self.store_id, self.other_store = program_id, store_id, other_store
        self.staff = self.tokens.mint_access(sub=uuid.uuid4(), role="staff",
                                             program_id=program_id, store_ids=[store_id])

    async def post(self, path: str, body: dict[str, Any], *, key: str | None = None,
                   token: str | None = None) -> Any:
        headers = {**bearer(token or self.staff), "Idempotency-Key": key or uuid.uuid4().hex}
        return await self.client.post(f"/v1/pos/{path}", json=body, headers=headers)

    async def member(self, *, points: int = 0, value: int = 0,
                     pin: str | None = PIN) -> fx.Member:
        pin_hash = self.app.state.hasher.hash(pin) if pin else None
        m = await fx.member(self.conn, self.program_id, pin_hash=pin_hash)
        if points or value:
            await fx.credit(self.conn, m, points=points, stored_value=value)
        return m

    def member_token(self, m: fx.Member) -> dict[str, str]:
        return bearer(self.tokens.mint_access(sub=m.id, role="member",
                                              program_id=self.program_id))

    async def buy(self, m: fx.Member, amount: int, **extra: Any) -> Any:
        key = extra.pop("key", None)
        body = {"store_id": str(self.store_id), "card_number": m.card_number,
                "receipt_id": extra.pop("receipt_id", uuid.uuid4().hex), "amount": amount,
                "currency": "EUR", **extra}
        return await self.post("purchases", body, key=key)


async def make_till(client: Client, app: Litestar, conn: asyncpg.Connection) -> Till:
    pid = await fx.program(conn)
    return Till(client, app, conn, pid, await fx.store(conn, pid), await fx.store(conn, pid))
