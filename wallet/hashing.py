"""Password and PIN hashing with argon2id (memory-hard), via argon2-cffi.

Hashing costs tens of milliseconds of CPU by design, so the async callers run it in a worker
thread (`hash_async`, `verify_async`) to keep the event loop free.
"""

from __future__ import annotations

import asyncio

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError


class Hasher:
    def __init__(self, *, memory_kib: int, time_cost: int) -> None:
        self._ph = PasswordHasher(memory_cost=memory_kib, time_cost=time_cost, parallelism=1)

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


# A valid hash of a random secret: verifying against it when the account does not exist keeps
# the response time of a wrong email equal to that of a wrong password.
def dummy_hash(hasher: Hasher) -> str:
    return hasher.hash("no-such-account-placeholder-secret")
