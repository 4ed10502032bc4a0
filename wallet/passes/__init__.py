"""Wallet passes: the member's card in Apple Wallet and Google Wallet, kept current.

Pure: `model` (value types), `content` (what a pass shows: pass.json, the Google object,
locations), `pkpass` (manifest, PKCS #7 signature, zip), `google_jwt` (RS256 JWTs).
SQL: `passes_repo` (passes, registrations, designs), `outbox_repo` (changes → pushes).
Services: `passes_service` (issue, PassKit web service, design), `delivery` (the update
outbox's rounds). Clients: `apns` (HTTP/2, ES256 provider token), `google_api` (Wallet Objects
REST API). `credentials` loads the operator's files.

May import the wallet's kernel and members; never geo or api.
"""
