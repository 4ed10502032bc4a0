"""Text as the system accepts it: every text field of every request uses one of these types.

PostgreSQL refuses a NUL character in `text` and in `jsonb`, and no name, code, e-mail or
title has a use for any other control character (C0 `\\x00-\\x1f`, DEL and C1 `\\x7f-\\x9f`).
Refusing them where a body is decoded turns what used to be a database error (a 500) into a
400 naming the field, and keeps them out of logs, exports and passes. `MultilineText` allows
tab, line feed and carriage return, for prose such as an offer's body.

Fields with a pattern of their own build it from `VISIBLE` (a character that is not a control
character), since msgspec takes one pattern per field.
"""

from __future__ import annotations

from typing import Annotated

from msgspec import Meta

CONTROL = r"\x00-\x1f\x7f-\x9f"
VISIBLE = rf"[^{CONTROL}]"  # one character that is not a control character
NO_CONTROL = rf"^{VISIBLE}*$"
NO_CONTROL_BUT_LINES = r"^[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]*$"

Text = Annotated[str, Meta(pattern=NO_CONTROL)]
MultilineText = Annotated[str, Meta(pattern=NO_CONTROL_BUT_LINES)]

# Wordings the API's error mapping shows instead of a failed field's regular expression.
PATTERN_MESSAGES = {
    NO_CONTROL: "must not contain control characters",
    NO_CONTROL_BUT_LINES: "must not contain control characters (tab and line breaks allowed)",
}


def patterned(pattern: str, wording: str) -> str:
    """Register how a field pattern built from `VISIBLE` reads in an error; returns it."""
    PATTERN_MESSAGES[pattern] = wording
    return pattern
