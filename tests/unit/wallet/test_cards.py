"""Card numbers carry a Luhn check digit that catches typing mistakes at the till."""

from __future__ import annotations

import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from wallet.members.cards import (
    CARD_LENGTH,
    CARD_PREFIX,
    is_valid_card_number,
    luhn_check_digit,
    new_card_number,
)


@pytest.mark.parametrize(("payload", "digit"), [
    ("7992739871", "3"),  # the textbook example
    ("4539578763621486"[:-1], "6"),
    ("0", "0"),
    ("1", "8"),
])
def test_the_check_digit_matches_known_luhn_numbers(payload: str, digit: str) -> None:
    assert luhn_check_digit(payload) == digit


def test_a_new_card_number_has_the_prefix_the_length_and_a_valid_check_digit() -> None:
    number = new_card_number()
    assert len(number) == CARD_LENGTH
    assert number.startswith(CARD_PREFIX)
    assert number.isdigit()
    assert is_valid_card_number(number)


def test_new_card_numbers_differ() -> None:
    assert len({new_card_number() for _ in range(1000)}) == 1000


def test_a_seeded_source_gives_reproducible_numbers() -> None:
    a = new_card_number(random.Random(7).randrange)
    b = new_card_number(random.Random(7).randrange)
    assert a == b
    assert is_valid_card_number(a)


def test_a_small_random_draw_is_zero_padded() -> None:
    number = new_card_number(lambda _: 42)
    assert number == CARD_PREFIX + "00000000000042" + luhn_check_digit(
        CARD_PREFIX + "00000000000042")


@given(st.integers(min_value=0, max_value=10**14 - 1))
def test_every_single_digit_error_is_caught(body: int) -> None:
    number = new_card_number(lambda _: body)
    for i in range(len(number)):
        for d in "0123456789":
            if d != number[i]:
                typo = number[:i] + d + number[i + 1:]
                assert not is_valid_card_number(typo)


@given(st.integers(min_value=0, max_value=10**14 - 1), st.integers(min_value=0, max_value=14))
def test_swapping_adjacent_digits_is_caught_unless_they_are_0_and_9_or_equal(
        body: int, i: int) -> None:
    number = new_card_number(lambda _: body)
    a, b = number[i], number[i + 1]
    swapped = number[:i] + b + a + number[i + 2:]
    if a != b and {a, b} != {"0", "9"}:
        assert not is_valid_card_number(swapped)


@pytest.mark.parametrize("bad", ["", "12345678901", "1" * 20, "7992739871x",
                                 "７９９２７３９８７１３", "79927398713 "])
def test_malformed_numbers_are_not_valid(bad: str) -> None:
    assert not is_valid_card_number(bad)


def test_a_non_digit_payload_is_refused() -> None:
    with pytest.raises(ValueError, match="digits"):
        luhn_check_digit("12a4")
