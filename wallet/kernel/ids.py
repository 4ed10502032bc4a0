"""Ids of rows that are only ever appended: time-ordered UUIDs (version 7, RFC 9562).

Why (issue 13, the till write profiled): a random (version 4) UUID as a B-tree key sends each
insert to a random leaf page of the primary key, so once the table outgrows the cache every
insert reads a page and, after each checkpoint, writes a full-page image of it to the WAL
(~2.4 kB per index per purchase over a 200,000-purchase history, against ~0.1 kB for the
insert itself). A version-7 UUID starts with the time in milliseconds: the keys of new rows
go to the rightmost leaf, which stays in the cache and is logged once per checkpoint.

Only for ledger rows (transactions, points lots, ledger entries): they are listed with their
time anyway, so the id's creation time says nothing new. Never for ids that act as secrets
(a card's QR id, tokens): 74 random bits are still unguessable, but the time is readable.
`uuid_utils` (Rust, RFC 9562 with a monotonic counter within a millisecond) rather than
hand-written bit fiddling; `compat` returns the standard library's `uuid.UUID`.
"""

from __future__ import annotations

import uuid

from uuid_utils.compat import uuid7


def time_ordered() -> uuid.UUID:
    """A new version-7 UUID: later calls in this process sort after earlier ones."""
    return uuid7()
