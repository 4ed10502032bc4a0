"""Members: the member row and its wallet account, cards (Luhn numbers, QR tokens), consents
with proof and contact preferences, refresh-token sessions, and the sign-up, profile and PIN
services.

`consents` is pure; `*_repo` modules hold the SQL; `*_service` modules own transactions.
May import: `wallet.kernel`, `wallet.programs`.
"""
