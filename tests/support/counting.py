"""A connection class that counts the statements it sends (BEGIN and COMMIT included): the
round trips a service makes, for tests and benchmarks (`asyncpg.create_pool(...,
connection_class=Counting)`; read and reset `Counting.sent`)."""

from __future__ import annotations

from typing import Any

import asyncpg


class Counting(asyncpg.Connection):  # type: ignore[type-arg]
    """Counts every `execute`/`fetch`/`fetchrow`/`fetchval` in the class attribute `sent`."""

    sent = 0

    async def execute(self, *args: Any, **kwargs: Any) -> Any:
        Counting.sent += 1
        return await super().execute(*args, **kwargs)

    async def fetch(self, *args: Any, **kwargs: Any) -> Any:
        Counting.sent += 1
        return await super().fetch(*args, **kwargs)

    async def fetchrow(self, *args: Any, **kwargs: Any) -> Any:
        Counting.sent += 1
        return await super().fetchrow(*args, **kwargs)

    async def fetchval(self, *args: Any, **kwargs: Any) -> Any:
        Counting.sent += 1
        return await super().fetchval(*args, **kwargs)
