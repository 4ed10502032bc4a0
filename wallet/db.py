"""Database typing shared by repositories: a connection may come straight from
`asyncpg.connect` or from a pool (`PoolConnectionProxy`); repositories accept both."""

from __future__ import annotations

from typing import TypeAlias

import asyncpg
from asyncpg.pool import PoolConnectionProxy

Conn: TypeAlias = "asyncpg.Connection[asyncpg.Record] | PoolConnectionProxy[asyncpg.Record]"
