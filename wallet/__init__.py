"""The wallet: the member, their data and their money — the bottom floor.

Sub-packages, from the bottom: `kernel` (database conventions, the one error tree, hashing,
the one idempotency implementation, shared value types) < `programs` (programs, tiers,
operator accounts) < `members` (member row, cards, consents, sessions, sign-up) < `privacy`
(access log, export, erasure, retention, notice) < `offers` (the offer read model and its
redemption) | `vouchers` (vouchers at the till) < `ledger` (pure ledger rules, the till,
expiry, statements) < `rewards` (the rewards catalogue, claims).

May import: the standard library and third-party packages. Never `geo` or `api`
(`make lint` checks every floor with import-linter).
"""
