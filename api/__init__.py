"""The top floor: HTTP and the process.

`app` (the factory), `lifespan` (every start hook and background loop), `config` (Settings
and every settings-to-policy adapter), `errors` (the one error table, problem+json),
`paging`, `metrics`, `idempotency` (the header), `jobs` (job registry), `auth/` (tokens,
keys, sessions, guards), `controllers/` (thin: decode, call a service, encode) and
`runtime/` (CLI, launcher, embedded PostgreSQL, demo).

May import: `wallet`, `geo`, `migrations`. Controllers never import `runtime` or `app`.
"""
