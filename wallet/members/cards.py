"""Card numbers: pure functions, no I/O.

A card number is `CARD_PREFIX`, then random digits, then a Luhn (mod 10) check digit, 16
digits in all. The check digit lets a till reject a mistyped number before any lookup: the
Luhn check catches every single-digit error and almost every swap of adjacent digits.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable

CARD_PREFIX = "9"  # "9" is outside the payment-card ranges, so no scheme confuses it
CARD_LENGTH = 16


def luhn_check_digit(payload: str) -> str:
    """The digit that, appended to `payload` (digits only), makes a valid Luhn number."""
    if not payload.isdigit() or not payload.isascii():
        raise ValueError("a card payload must be ASCII digits")
    total = 0
    # Walking from the right, the digit next to the (future) check digit is doubled.
    for i, ch in enumerate(reversed(payload)):
        d = int(ch)
        if i % 2 == 0:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return str((10 - total % 10) % 10)


def is_valid_card_number(number: str) -> bool:
    """True when `number` is 12 to 19 ASCII digits whose last digit is its Luhn check digit."""
    if not (number.isascii() and number.isdigit() and 12 <= len(number) <= 19):
        return False
    return luhn_check_digit(number[:-1]) == number[-1]


def new_card_number(randbelow: Callable[[int], int] = secrets.randbelow) -> str:
    """A fresh `CARD_LENGTH`-digit number with a valid check digit.

    `randbelow` is the source of randomness (the CSPRNG by default; tests pass a seeded one).
    Uniqueness is the database's job (`cards.number` is UNIQUE); with 14 random digits a
    collision is rare enough that the caller simply retries.
    """
    body_len = CARD_LENGTH - len(CARD_PREFIX) - 1
    payload = CARD_PREFIX + str(randbelow(10**body_len)).zfill(body_len)
    return payload + luhn_check_digit(payload)
