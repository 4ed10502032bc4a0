"""Domain errors of the geofencing core: a branch of the one `DomainError` tree
(`wallet.kernel.errors`), mapped to HTTP once, in ``api/errors.py``."""

from __future__ import annotations

from wallet.kernel.errors import DomainError


class GeoError(DomainError):
    """Base class of every error raised by ``geo``."""


class InvalidZone(GeoError):
    """A zone geometry refused by validation (HTTP 422).

    ``field`` is a path into the zone input such as ``"zone.coordinates[0][3]"`` or
    ``"zone.radius_m"``; ``reason`` is a short human sentence.
    """

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}", field=field)
        self.reason = reason


class InvalidFeatures(GeoError):
    """A store import where some features are unusable; `errors` lists every one by index."""

    def __init__(self, errors: list[dict[str, object]]) -> None:
        super().__init__(f"{len(errors)} feature(s) refused; nothing was imported",
                         field="features")
        self.errors = errors


class LikelySwappedCoordinates(GeoError):
    """Zones whose `[lon, lat]` look swapped (see `geo.placement`); `errors` lists each with its
    `field` and `reason`. The manager may confirm the location (HTTP 422 until then)."""

    def __init__(self, errors: list[dict[str, object]], *, field: str) -> None:
        first = str(errors[0]["reason"])
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        super().__init__(f"{first}{more}. Send the coordinates as [lon, lat], or repeat with "
                         "`confirm_location=true` to keep them.", field=field)
        self.errors = errors
