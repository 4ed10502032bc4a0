"""The kernel: what every other part of the system builds on.

`db` (connection type, pool reset, job locks), `errors` (the one `DomainError` tree, mapped to
HTTP once in `api/errors.py`), `hashing` (argon2id), `idempotency` + `idempotency_repo` (the
one implementation of Idempotency-Key), `model` (shared value types: programs, tiers, roles,
the ledger entry read model).

May import: the standard library and third-party packages only.
"""
