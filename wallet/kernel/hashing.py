"""Password and PIN hashing with argon2id (memory-hard), via argon2-cffi.

Hashing costs tens of milliseconds of CPU by design, so the async callers run it in a worker
thread (`hash_async`, `verify_async`) to keep the event loop free.
"""

from __future__ import annotations

import asyncio
import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError


class Hasher:
    def __init__(self, *, memory_kib: int, time_cost: int) -> None:
        self._ph = PasswordHasher(memory_cost=memory_kib, time_cost=time_cost, parallelism=1)
        self._unknown: str | None = None

    def hash(self, secret: str) -> str:
        return self._ph.hash(secret)

    def verify(self, hashed: str, secret: str) -> bool:
        try:
            return self._ph.verify(hashed, secret)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False

    async def hash_async(self, secret: str) -> str:
        return await asyncio.to_thread(self.hash, secret)

    async def verify_async(self, hashed: str, secret: str) -> bool:
        return await asyncio.to_thread(self.verify, hashed, secret)

    async def verify_unknown_async(self, secret: str) -> bool:
        """Spend what a real verification costs, for an account that does not exist, so a
        wrong e-mail answers as slowly as a wrong password. Always False.

        The hash compared against is of a random secret nobody knows, made on first use (not
        at start-up: most workers never need it)."""
        if self._unknown is None:
            self._unknown = await self.hash_async(secrets.token_urlsafe(32))
        await self.verify_async(self._unknown, secret)
        return False
