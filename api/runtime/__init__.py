"""The process shell: the `loyalty` CLI, the launcher (uvicorn workers, migrations before
they start, metrics directory), the embedded PostgreSQL server and the demo seed.

May import: everything in `api` (the app by its import string), `geo`, `wallet`,
`migrations`.
"""
