"""One place for configuration: a frozen Settings Struct decoded from the environment.

`Settings.from_env()` is called when the app (or a CLI command) is created, never at import
time, and the result is passed down explicitly: `wallet/` and `geo/` never read it themselves.
Every field maps to an environment variable `LOYALTY_<FIELD_NAME_UPPER>`, except
`database_url`, which is the conventional `DATABASE_URL`. The README's configuration table
lists them all.

The functions at the end are the one translation of the settings into each domain policy
(ping rules, offer issuance, webhook delivery, retention, PIN lockout): the domain receives
values, never the settings.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from datetime import timedelta
from typing import Annotated

import msgspec
from msgspec import Meta

from geo.issuance import IssueSettings
from geo.outbox import WebhookConfig
from geo.pings import PingRules
from wallet.ledger.till import PinPolicy
from wallet.privacy.notice import Notice, NoticeContext, ProgramRef, notice
from wallet.privacy.retention import RetentionPolicy

PositiveInt = Annotated[int, Meta(gt=0)]
NonNegInt = Annotated[int, Meta(ge=0)]


class Settings(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Runtime configuration. Durations are in seconds, distances in metres, sizes in bytes."""

    database_url: str = ""
    data_dir: str = ".data"
    # --- auth -------------------------------------------------------------------------------
    jwt_keys_file: str = ""  # default: <data_dir>/jwt-keys.json, created on first use
    jwt_issuer: str = "loyalty-geo"
    access_token_ttl_s: PositiveInt = 900
    refresh_token_ttl_s: PositiveInt = 30 * 86400
    qr_token_ttl_s: PositiveInt = 60
    # argon2id cost (memory in KiB). Defaults follow OWASP's minimum for argon2id.
    password_memory_kib: Annotated[int, Meta(ge=8)] = 19456
    password_time_cost: PositiveInt = 2
    credential_attempts_per_minute: NonNegInt = 60  # logins + sign-ups per client address
    pin_max_attempts: PositiveInt = 5
    pin_lock_s: PositiveInt = 900
    # --- HTTP -------------------------------------------------------------------------------
    max_body_bytes: PositiveInt = 1_048_576
    max_json_depth: Annotated[int, Meta(ge=8, le=512)] = 32  # arrays/objects in a body
    db_pool_min: NonNegInt = 2
    # A periodic job holds two connections (its lock, its work): see wallet.kernel.db.try_job_lock
    db_pool_max: Annotated[int, Meta(ge=2)] = 10
    # --- geofencing -------------------------------------------------------------------------
    max_zone_extent_m: Annotated[float, Meta(gt=0)] = 20_000.0
    max_zone_vertices: Annotated[int, Meta(ge=4)] = 2_000  # Radar's limit per polygon
    max_import_bytes: PositiveInt = 8 * 1_048_576  # one store import request
    ping_max_age_s: PositiveInt = 3600
    ping_max_future_s: NonNegInt = 60
    ping_max_accuracy_m: Annotated[float, Meta(gt=0)] = 200.0
    ping_max_speed_mps: Annotated[float, Meta(gt=0)] = 70.0
    visit_exit_after_s: PositiveInt = 180
    visit_default_dwell_s: PositiveInt = 300
    visit_lost_after_s: PositiveInt = 3600  # an open visit unseen this long is closed
    raw_ping_retention_s: NonNegInt = 0  # 0 = raw pings are never stored
    # --- offers delivery ---------------------------------------------------------------------
    webhook_url: str = ""  # empty: offers are only returned in-app (no outbox rows)
    webhook_secret: str = ""
    webhook_poll_s: Annotated[float, Meta(ge=0)] = 1.0  # 0 disables the delivery loop
    webhook_timeout_s: Annotated[float, Meta(gt=0)] = 5.0
    webhook_batch: PositiveInt = 50
    webhook_backoff_s: Annotated[float, Meta(gt=0)] = 1.0  # first retry; doubles each time
    webhook_max_backoff_s: Annotated[float, Meta(gt=0)] = 300.0
    weather_max_age_s: PositiveInt = 3600  # an older observation satisfies no weather rule
    # --- jobs and retention -----------------------------------------------------------------
    jobs_interval_s: NonNegInt = 300  # 0 disables the in-process periodic jobs
    retention_visits_days: PositiveInt = 180
    retention_expired_offers_days: PositiveInt = 90
    retention_access_log_days: PositiveInt = 365
    retention_idle_account_days: PositiveInt = 3 * 365
    retention_withdrawn_consent_days: PositiveInt = 5 * 365
    retention_idempotency_keys_hours: PositiveInt = 24
    # --- the console and the till (/console, /till) ------------------------------------------
    # Map tiles: a URL template ({z}/{x}/{y}, optional {s}); empty = no tiles, zones drawn on a
    # plain background. The page's Content-Security-Policy allows this origin for images.
    console_tile_url: str = "https://tile.openstreetmap.org/{z}/{x}/{y}.png"
    console_tile_attribution: str = "© OpenStreetMap contributors"
    # --- privacy notice (GET /v1/privacy/notice) ---------------------------------------------
    privacy_controller: str = "the program operator"
    privacy_contact: str = ""  # e.g. the DPO's e-mail address

    @property
    def keys_file(self) -> str:
        return self.jwt_keys_file or os.path.join(self.data_dir, "jwt-keys.json")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: object) -> Settings:
        """Decode settings from `environ` (default: os.environ); `overrides` win.

        Raises `msgspec.ValidationError` naming the variable when a value is malformed.
        """
        env = os.environ if environ is None else environ
        raw: dict[str, object] = {}
        for name in cls.__struct_fields__:
            key = "DATABASE_URL" if name == "database_url" else f"LOYALTY_{name.upper()}"
            if key in env:
                raw[name] = env[key]
        raw.update(overrides)
        return msgspec.convert(raw, cls, strict=False)


# --- settings -> domain policies ----------------------------------------------------------------

def ping_rules(settings: Settings) -> PingRules:
    return PingRules(max_age_s=settings.ping_max_age_s, max_future_s=settings.ping_max_future_s,
                     max_accuracy_m=settings.ping_max_accuracy_m,
                     max_speed_mps=settings.ping_max_speed_mps,
                     exit_after_s=settings.visit_exit_after_s,
                     dwell_s=settings.visit_default_dwell_s,
                     lost_after_s=settings.visit_lost_after_s,
                     raw_retention_s=settings.raw_ping_retention_s)


def issue_settings(settings: Settings) -> IssueSettings:
    return IssueSettings(weather_max_age_s=settings.weather_max_age_s,
                         push_enabled=bool(settings.webhook_url))


def webhook_config(settings: Settings) -> WebhookConfig:
    return WebhookConfig(
        url=settings.webhook_url, secret=settings.webhook_secret,
        timeout_s=settings.webhook_timeout_s, batch=settings.webhook_batch,
        backoff_s=settings.webhook_backoff_s, max_backoff_s=settings.webhook_max_backoff_s)


def retention_policy(settings: Settings) -> RetentionPolicy:
    """Retention periods, for the purge and the privacy notice alike."""
    return RetentionPolicy(
        visits=timedelta(days=settings.retention_visits_days),
        raw_pings=timedelta(seconds=settings.raw_ping_retention_s),
        expired_offers=timedelta(days=settings.retention_expired_offers_days),
        access_log=timedelta(days=settings.retention_access_log_days),
        withdrawn_consents=timedelta(days=settings.retention_withdrawn_consent_days),
        idle_accounts=timedelta(days=settings.retention_idle_account_days),
        idempotency_keys=timedelta(hours=settings.retention_idempotency_keys_hours),
        sessions=timedelta(seconds=settings.refresh_token_ttl_s))


def pin_policy(settings: Settings) -> PinPolicy:
    return PinPolicy(max_attempts=settings.pin_max_attempts, lock_s=settings.pin_lock_s)


def privacy_notice(settings: Settings, program: ProgramRef | None = None) -> Notice:
    """The privacy notice these settings make (the retention policy the purge applies, the
    push webhook if any), for a program or the operator's."""
    return notice(retention_policy(settings), NoticeContext(
        controller=settings.privacy_controller, contact=settings.privacy_contact,
        push_webhook=bool(settings.webhook_url), program=program))
