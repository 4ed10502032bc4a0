"""A program's limits on money at the till, pure: a purchase's amount, a top-up, and the
purse (stored value) balance, each a ceiling in minor units (`wallet.kernel.model.Limits`).

Each refusal is a `LimitExceeded` naming the limit, its value and the most the operation
could be now (`allowed`), checked before anything is written or any PIN is verified. The
purse's ceiling holds for every credit: a top-up or a stored-value reward beyond it is
refused; a refund gives back in cash what the purse cannot take (`refund_rules.refund`). Lowering
a ceiling never takes money away: a purse above it keeps its balance and only cannot grow.
"""

from __future__ import annotations

from wallet.kernel.errors import LimitExceeded
from wallet.kernel.model import Limits


def check_purchase(limits: Limits, amount: int) -> None:
    """A purchase's `amount` is at most `max_purchase_amount`: an absurd amount is refused
    before it can earn absurd points."""
    if amount > limits.max_purchase_amount:
        raise LimitExceeded(
            f"a purchase is at most {limits.max_purchase_amount} in this program "
            f"(limits.max_purchase_amount); {amount} was asked", limit="max_purchase_amount",
            maximum=limits.max_purchase_amount, allowed=limits.max_purchase_amount)


def purse_room(purse: int, limits: Limits) -> int:
    """How much stored value a purse holding `purse` can still take (0 once at or above its
    ceiling)."""
    return max(0, limits.max_stored_value_balance - purse)


def check_credit(purse: int, limits: Limits, amount: int, *,
                 field: str | None = "amount") -> None:
    """Crediting `amount` to a purse holding `purse` keeps it within
    `max_stored_value_balance`."""
    room = purse_room(purse, limits)
    if amount > room:
        raise LimitExceeded(
            f"the purse holds at most {limits.max_stored_value_balance} in this program "
            f"(limits.max_stored_value_balance): it holds {purse}, so it can "
            f"take {room} more", limit="max_stored_value_balance",
            maximum=limits.max_stored_value_balance, allowed=room, field=field)


def check_top_up(purse: int, limits: Limits, amount: int) -> None:
    """A top-up is at most `max_top_up_amount`, and leaves the purse within its ceiling."""
    if amount > limits.max_top_up_amount:
        raise LimitExceeded(
            f"a top-up is at most {limits.max_top_up_amount} in this program "
            f"(limits.max_top_up_amount); {amount} was asked", limit="max_top_up_amount",
            maximum=limits.max_top_up_amount,
            allowed=min(limits.max_top_up_amount, purse_room(purse, limits)))
    check_credit(purse, limits, amount)

