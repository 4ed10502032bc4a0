"""What a wallet pass is made of: frozen value types shared by the pure builders, the
repository and the services. No I/O.

A pass never stores its content: `PassView` is read in one statement when a pass is rendered
(downloaded, fetched by a device, pushed to Google), so what it shows is always the member's
state at that moment. Amounts are integers in minor units of `currency`; points are integers.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

import msgspec

PassKind = Literal["apple", "google"]
MAX_LOCATIONS = 10  # Apple Wallet shows at most ten relevant locations per pass

DEFAULT_BACKGROUND = "#1f2937"
DEFAULT_FOREGROUND = "#ffffff"
DEFAULT_LABEL = "#d1d5db"


class Design(msgspec.Struct, frozen=True, kw_only=True):
    """A program's look on passes, and its flagship stores (shown on every member's pass)."""

    background_color: str = DEFAULT_BACKGROUND  # "#rrggbb", lower case
    foreground_color: str = DEFAULT_FOREGROUND
    label_color: str = DEFAULT_LABEL
    featured_store_ids: list[uuid.UUID] = []


class StoreCandidate(msgspec.Struct, frozen=True, kw_only=True):
    """A store that may be shown as a relevant location; `zone` is its GeoJSON (+ Circle)."""

    id: uuid.UUID
    name: str
    zone: dict[str, object]


class Location(msgspec.Struct, frozen=True, kw_only=True):
    """A point where the phone itself shows the pass on the lock screen (degrees, WGS 84)."""

    store_id: uuid.UUID
    latitude: float
    longitude: float
    relevant_text: str


class OfferLine(msgspec.Struct, frozen=True, kw_only=True):
    title: str
    expires_at: datetime


class PassView(msgspec.Struct, frozen=True, kw_only=True):
    """Everything one pass shows, as of the read. A voided pass (its member was erased)
    carries no member data at all: every member field is None or empty."""

    pass_id: uuid.UUID
    kind: PassKind
    serial: str
    auth_token: str
    program_id: uuid.UUID
    program_name: str
    currency: str
    stored_value_enabled: bool
    design: Design
    update_seq: int
    modified_at: datetime  # whole seconds: the pass's Last-Modified
    voided: bool
    card_number: str | None = None
    first_name: str | None = None  # only when the member chose to show it
    tier: str | None = None
    points: int = 0
    stored_value: int = 0
    offers: list[OfferLine] = []
    locations: list[Location] = []


class PassRef(msgspec.Struct, frozen=True, kw_only=True):
    """A pass as the PassKit web service authenticates it."""

    pass_id: uuid.UUID
    serial: str
    auth_token: str
    modified_at: datetime
    voided: bool


PushStatus = Literal["sent", "retry", "gone"]


class PushOutcome(msgspec.Struct, frozen=True, kw_only=True):
    """What one push attempt came to: `sent`; `retry` later (transport error, 429, 5xx, an
    expired provider token); `gone`: never retry (device unregistered, object never saved)."""

    status: PushStatus
    error: str | None = None
