"""Authentication and authorisation: the Ed25519 keyset (`keys`), token minting and strict
verification, the auth middleware and role/scope guards (`tokens`), and logins with
refresh-token rotation (`sessions`, SQL in `wallet.members.sessions_repo`).

May import: `api.config`, `api.jobs`' floor and below, `wallet`.
"""
