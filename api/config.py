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
from wallet.kernel.errors import PassesNotConfigured
from wallet.ledger.till import PinPolicy
from wallet.passes import credentials, google_jwt
from wallet.passes.apns import ApnsConfig
from wallet.passes.delivery import DeliveryConfig
from wallet.passes.google_api import GoogleApiConfig
from wallet.passes.passes_service import ApplePasses, GooglePasses
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
    # Opened at start (capped at db_pool_max): a pool that grows under load makes requests
    # wait while each new connection starts (measured in README Performance, "The pool").
    db_pool_min: NonNegInt = 10
    # A file prefix: each worker samples where its CPU goes and writes <prefix>.<pid> at
    # shutdown (api/cpu_profile.py; `python -m loadtests.profile` reads them). Empty = off.
    cpu_profile: str = ""
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
    # The zone listener (geo/registry.py) is asked to answer every N s; no answer within the
    # timeout is a lost connection (a silent partition): it listens again and catches up.
    zone_listener_heartbeat_s: Annotated[float, Meta(ge=0)] = 30.0  # 0 disables it
    zone_listener_heartbeat_timeout_s: Annotated[float, Meta(gt=0)] = 5.0
    # A batch first tries ONE statement that assumes the member has no open visit, or the
    # state the worker last wrote for it (geo/pings_speculation.py, geo/pings_memory.py).
    # Off by default: with the database on the same machine and several workers it saves no
    # CPU when members are often in stores (README, "A member with a visit open"); it pays
    # for members' first batches and where a round trip is expensive.
    pings_one_trip: bool = False
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
    # --- wallet passes (README "Wallet passes"); unset: the pass routes answer 404 ------------
    pass_type_id: str = ""  # Apple Pass Type ID, e.g. pass.com.example.loyalty (APNs topic)
    apple_team_id: str = ""
    apple_pass_cert_file: str = ""  # PEM (or DER): the Pass Type ID certificate
    apple_pass_key_file: str = ""  # PEM: its private key
    apple_pass_key_password: str = ""
    apple_wwdr_cert_file: str = ""  # PEM (or DER): Apple's WWDR intermediate certificate
    apple_pass_images_dir: str = ""  # icon.png, logo.png...; default: plain program colour
    pass_web_service_url: str = ""  # public URL of /v1/passkit (https for real devices)
    apns_key_file: str = ""  # the .p8 key of token-based APNs auth; empty: no pushes
    apns_key_id: str = ""
    apns_url: str = "https://api.push.apple.com"
    google_wallet_issuer_id: str = ""
    google_wallet_service_account_file: str = ""  # the service account's JSON key
    google_wallet_origins: str = ""  # comma-separated origins that show the save button
    google_wallet_issuer_name: str = ""  # default: the program's name
    google_wallet_logo_url: str = ""  # set: the save link also defines the program's class
    google_wallet_api_url: str = "https://walletobjects.googleapis.com"  # empty: no updates
    google_wallet_token_url: str = ""  # default: the key file's token_uri
    pass_push_poll_s: Annotated[float, Meta(ge=0)] = 1.0  # 0 disables the delivery loop
    pass_push_batch: PositiveInt = 200
    pass_push_timeout_s: Annotated[float, Meta(gt=0)] = 10.0
    pass_push_backoff_s: Annotated[float, Meta(gt=0)] = 1.0  # first retry; doubles
    pass_push_max_backoff_s: Annotated[float, Meta(gt=0)] = 300.0
    pass_farewell_days: PositiveInt = 30  # an erased member's devices may learn the void

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
        push_webhook=bool(settings.webhook_url), program=program,
        apple_passes=bool(settings.pass_type_id),
        google_passes=bool(settings.google_wallet_issuer_id),
        google_updates=bool(settings.google_wallet_issuer_id and settings.google_wallet_api_url),
        pass_farewell_days=settings.pass_farewell_days))


# --- settings -> wallet passes --------------------------------------------------------------
# The operator's credentials are loaded once, when the app is created: a half-configured kind
# of pass (a Pass Type ID without its certificate, say) stops the start with a message naming
# the missing variables; a kind with nothing set is off, its routes answer 404
# `/problems/passes-not-configured`.


class PassesSetup:
    """What the app holds about passes: each part None when not configured."""

    def __init__(self, *, apple: ApplePasses | None, google: GooglePasses | None,
                 apns: ApnsConfig | None, google_api: GoogleApiConfig | None,
                 delivery: DeliveryConfig) -> None:
        self.apple = apple
        self.google = google
        self.apns = apns
        self.google_api = google_api
        self.delivery = delivery

    def require_apple(self) -> ApplePasses:
        if self.apple is None:
            raise PassesNotConfigured("Apple Wallet passes are not configured on this server "
                                      "(see the README, \"Wallet passes\")")
        return self.apple

    def require_google(self) -> GooglePasses:
        if self.google is None:
            raise PassesNotConfigured("Google Wallet passes are not configured on this "
                                      "server (see the README, \"Wallet passes\")")
        return self.google


def _require(settings: Settings, kind: str, names: tuple[str, ...]) -> None:
    missing = [f"LOYALTY_{n.upper()}" for n in names if not getattr(settings, n)]
    if missing:
        raise RuntimeError(f"{kind} passes are half configured: set {', '.join(missing)}")


def _apple_passes(s: Settings) -> ApplePasses | None:
    names = ("pass_type_id", "apple_team_id", "apple_pass_cert_file", "apple_pass_key_file",
             "apple_wwdr_cert_file", "pass_web_service_url")
    if not any(getattr(s, n) for n in names):
        return None
    _require(s, "Apple Wallet", names)
    return ApplePasses(
        pass_type_id=s.pass_type_id, team_id=s.apple_team_id,
        web_service_url=s.pass_web_service_url.rstrip("/"),
        signer=credentials.signer(s.apple_pass_cert_file, s.apple_pass_key_file,
                                  s.apple_wwdr_cert_file, s.apple_pass_key_password),
        images=credentials.images(s.apple_pass_images_dir) if s.apple_pass_images_dir
        else None)


def _google_passes(s: Settings) -> GooglePasses | None:
    names = ("google_wallet_issuer_id", "google_wallet_service_account_file")
    if not any(getattr(s, n) for n in names):
        return None
    _require(s, "Google Wallet", names)
    account, key = google_jwt.service_account(credentials.file_bytes(
        s.google_wallet_service_account_file, "Google service-account key"))
    return GooglePasses(
        issuer_id=s.google_wallet_issuer_id, account=account, key=key,
        origins=[o.strip() for o in s.google_wallet_origins.split(",") if o.strip()],
        issuer_name=s.google_wallet_issuer_name, logo_url=s.google_wallet_logo_url)


def passes_setup(s: Settings) -> PassesSetup:
    """Load what is configured (see above). Raises RuntimeError or
    `credentials.CredentialError` (a ValueError) naming what is wrong."""
    apple, google = _apple_passes(s), _google_passes(s)
    apns = None
    if s.apns_key_file or s.apns_key_id:
        _require(s, "APNs", ("apns_key_file", "apns_key_id", "pass_type_id", "apple_team_id"))
        apns = ApnsConfig(base_url=s.apns_url, team_id=s.apple_team_id, key_id=s.apns_key_id,
                          key_pem=credentials.file_bytes(s.apns_key_file, "APNs key"),
                          topic=s.pass_type_id, timeout_s=s.pass_push_timeout_s)
    google_api = None
    if google is not None and s.google_wallet_api_url:
        google_api = GoogleApiConfig(
            api_url=s.google_wallet_api_url, token_url=s.google_wallet_token_url,
            service_account_json=credentials.file_bytes(
                s.google_wallet_service_account_file, "Google service-account key"),
            timeout_s=s.pass_push_timeout_s)
    return PassesSetup(apple=apple, google=google, apns=apns, google_api=google_api,
                       delivery=DeliveryConfig(
                           batch=s.pass_push_batch, backoff_s=s.pass_push_backoff_s,
                           max_backoff_s=s.pass_push_max_backoff_s,
                           farewell_s=s.pass_farewell_days * 86400,
                           google_issuer_id=s.google_wallet_issuer_id))
