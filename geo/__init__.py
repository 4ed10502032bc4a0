"""Geofencing: zones, the matcher, visits, campaigns and the offers they issue.

Pure cores: `zones` (validation), `matcher/` (the spatial index), `visits` (the state machine
and ping screening), `pings` (a batch's walk), `campaigns` and `eligibility` (offer rules).
SQL in `*_repo` modules; services own transactions (`pings_service`, `campaigns_service`,
`stores`, `store_import`, `outbox`); `registry` keeps each worker's zone snapshots current.

May import: `wallet`, never `api`. The matcher imports nothing of the project but `geo.zones`.
"""
