"""The team's rule (GUIDE.md, architecture floors): no production module over ~400 lines. A
module that grows past it is split along a seam that reads well (the ledger's refund rule left
`wallet/ledger/rules.py` for `refund_rules.py` when it reached 417)."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PRODUCTION = ("wallet", "geo", "api", "migrations")
MAX_LINES = 400


def test_no_production_module_is_over_400_lines() -> None:
    sizes = {str(p.relative_to(ROOT)): len(p.read_text(encoding="utf-8").splitlines())
             for package in PRODUCTION for p in (ROOT / package).rglob("*.py")}
    assert len(sizes) > 100  # the packages were found
    assert {m: n for m, n in sizes.items() if n > MAX_LINES} == {}
