"""The console's one message catalogue: English and French say the same things, and every key
the pages use exists."""

from __future__ import annotations

import json
import re
from pathlib import Path

WEB = Path(__file__).resolve().parents[3] / "web"


def test_english_and_french_have_the_same_keys_and_placeholders() -> None:
    catalogue = json.loads((WEB / "src" / "messages.json").read_text(encoding="utf-8"))
    assert set(catalogue) == {"en", "fr"}
    assert set(catalogue["en"]) == set(catalogue["fr"])
    for key, en in catalogue["en"].items():
        fr = catalogue["fr"][key]
        assert type(en) is type(fr), key
        texts = (en, fr) if isinstance(en, str) else (en["other"], fr["other"])
        holes = [set(re.findall(r"\{(\w+)\}", t)) for t in texts]
        assert holes[0] == holes[1], key


def test_every_literal_key_used_by_the_pages_is_in_the_catalogue() -> None:
    keys = set(json.loads((WEB / "src" / "messages.json").read_text(encoding="utf-8"))["en"])
    used: set[str] = set()
    for path in [*WEB.glob("*.html"), *(WEB / "src").rglob("*.js")]:
        text = path.read_text(encoding="utf-8")
        used |= set(re.findall(r"\bt\('([a-z_]+\.[a-z_.]+)'", text))
        used |= set(re.findall(r'data-i18n="([a-z_]+\.[a-z_.]+)"', text))
    assert used and used <= keys, sorted(used - keys)
