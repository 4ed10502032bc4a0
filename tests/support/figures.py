"""Figures that tests measure (faults under load, schema fuzzing), shown at the end of the run.

A test records them with the `figures` fixture; they travel in its report's
`user_properties`, so they reach the terminal summary from pytest-xdist's workers too (a
worker's own output is not shown). The summary also writes them to
`$TMPDIR/loyalty-reliability-last-run.json`, quoted in the README's Reliability section.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import pytest

Figures = Callable[[str, dict[str, Any]], None]
PROPERTY = "figures"
LAST_RUN = "loyalty-reliability-last-run.json"


def recorder(item: pytest.Item) -> Figures:
    def record(name: str, values: dict[str, Any]) -> None:
        item.user_properties.append((PROPERTY, {name: values}))
    return record


def collected(reports: Iterable[pytest.TestReport]) -> dict[str, dict[str, Any]]:
    """The figures of the run's tests (from their call phase), by name."""
    found: dict[str, dict[str, Any]] = {}
    for report in reports:
        if getattr(report, "when", None) == "call":
            for key, value in report.user_properties:
                if key == PROPERTY:
                    found.update(value)
    return found


def summarise(reporter: pytest.TerminalReporter) -> None:
    reports = [r for stats in reporter.stats.values() for r in stats
               if isinstance(r, pytest.TestReport)]
    if not (found := collected(reports)):
        return
    path = Path(tempfile.gettempdir()) / LAST_RUN
    path.write_text(json.dumps(found, indent=1))
    reporter.write_sep("-", f"figures of this run (also in {path})")
    for name, values in found.items():
        reporter.write_line(f"{name}: {json.dumps(values)}")
