"""A till's retry of a PIN purchase refused only because other PIN checks on the card were in
flight (409 `/problems/pin-check-in-progress`): sent again with the same Idempotency-Key.

A real till waits `Retry-After` (1 s); tests send it again at once, which only makes more
requests meet the same in-flight check, and bound the retries: a card that stays "in
progress" that long is a bug (the pending state is bounded), not a slow machine."""

from __future__ import annotations

from typing import Any

import httpx

IN_PROGRESS = "/problems/pin-check-in-progress"
MAX_TRIES = 2_000


def in_progress(r: httpx.Response) -> bool:
    return r.status_code == 409 and r.json().get("type") == IN_PROGRESS


async def post_retrying(client: httpx.AsyncClient, url: str, body: dict[str, Any],
                        key: str) -> tuple[httpx.Response, int]:
    """POST `body` with Idempotency-Key `key` until it is not "in progress"; the answer and
    how many times it was sent."""
    for tries in range(1, MAX_TRIES + 1):
        r = await client.post(url, json=body, headers={"Idempotency-Key": key})
        if not in_progress(r):
            return r, tries
    raise AssertionError(f"{key}: still {IN_PROGRESS} after {MAX_TRIES} tries")
