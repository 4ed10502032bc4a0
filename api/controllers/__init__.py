"""HTTP controllers, one module per audience and area. Thin: decode a msgspec Struct, check
the caller's role and scope, call one service, encode the result. No SQL, no transactions,
no background work here.

May import: `api.auth`, `api.config`, `api.errors`, `api.paging`, `api.metrics`,
`api.idempotency`, `geo`, `wallet`.
"""
