"""Retention: how long each class of data is kept (pure). `RetentionPolicy` is built from the
settings in one place (`api.config.retention_policy`) and drives both the purge
(`wallet.privacy.purge`) and the public privacy notice (`wallet.privacy.notice`), so what the
notice promises is what the purge does."""

from __future__ import annotations

from datetime import timedelta

import msgspec


class RetentionPolicy(msgspec.Struct, frozen=True, kw_only=True):
    """How long each data class is kept (see the module docstring)."""

    visits: timedelta
    raw_pings: timedelta
    expired_offers: timedelta
    access_log: timedelta
    withdrawn_consents: timedelta
    idle_accounts: timedelta
    idempotency_keys: timedelta
    sessions: timedelta  # refresh-token lifetime: a token is deleted when it expires
