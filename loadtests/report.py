"""What a load test leaves behind: a printed table, a JSON results file and a plot.

Every run writes `loadtests/results/<test>-<UTC time>.json` (git-ignored) with the settings,
the host, every step (offered and achieved rate, p50/p90/p99/max latency from the intended
send time, errors, CPU per request for the server, PostgreSQL and the generator, PostgreSQL
statements per request and the most frequent ones), the highest sustained rate per worker
count and the outcome of the consistency checks; and beside it a PNG plot of latency
(p50 and p99) against achieved throughput, with CPU per request below.
matplotlib comes with the `loadtest` extra (`pip install -e '.[loadtest]'`, which
`make loadtest` does); without it the plot is skipped with a note.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from loadtests.common import ROOT
from loadtests.openloop import Run, Step, Target

RESULTS = ROOT / "loadtests" / "results"


def print_step(workers: int, s: Step, target: Target, *, header: bool) -> None:
    cells = [("workers", 7, f"{workers}"),
             ("offered/s", 9, f"{s.rate:.0f}"),
             ("answered/s", 10, f"{s.achieved:.0f}"),
             (target.unit, 11, f"{s.achieved * target.per_request:.0f}"),
             ("p50 ms", 7, f"{s.pct(0.5):.1f}"),
             ("p99 ms", 7, f"{s.pct(0.99):.1f}"),
             ("max ms", 7, f"{s.pct(1.0):.0f}"),
             ("errors", 6, f"{s.errors}"),
             ("lag p99", 7, f"{s.pct(0.99, 'lags'):.1f}"),
             ("CPU ms/req srv+pg (client)", 26,
              f"{s.cpu_ms.get('server', 0):.2f}+{s.cpu_ms.get('postgres', 0):.2f}"
              f" ({s.cpu_ms.get('client', 0):.2f})"),
             ("stmts/req", 9, "n/a" if s.statements is None else f"{s.statements:.2f}"),
             ("lock wait", 9, "n/a" if s.lock_wait_share is None
              else f"{s.lock_wait_share:.0%}"),
             ("", 4, "ok" if s.holds(target.p99_ms) else (s.stopped and "STOP") or "over")]
    if header:
        print(" ".join(f"{title:>{width}}" for title, width, _ in cells))
    print(" ".join(f"{value:>{width}}" for _, width, value in cells), flush=True)
    if s.failures or s.stopped:
        print(f"        {s.stopped or ''} {s.failures or ''}".rstrip(), flush=True)


def print_best(run: Run, target: Target) -> None:
    b = run.best
    if b is None:
        print(f"{run.workers} worker(s): no rate tried held p99 <= {target.p99_ms:g} ms "
              "with no errors")
        return
    cpu = " + ".join(f"{k} {v:.2f}" for k, v in b.cpu_ms.items())
    stmts = "" if b.statements is None else f", {b.statements:.2f} statements/request"
    if b.lock_wait_share is not None:
        stmts += f", {b.lock_wait_share:.0%} of PostgreSQL's busy time waiting for locks"
    print(f"{run.workers} worker(s): highest sustained rate {b.achieved:.0f} requests/s = "
          f"{b.achieved * target.per_request:.0f} {target.unit} (target {target.rate:g}), "
          f"p50 {b.pct(0.5):.1f} ms, p99 {b.pct(0.99):.1f} ms (target {target.p99_ms:g}); "
          f"CPU ms per request: {cpu}{stmts}; baseline GET /health "
          f"{run.baseline_health_rps:.0f} req/s (closed loop, same run)", flush=True)
    for st in b.top_statements[:10]:
        where = "" if st["toplevel"] else "(nested) "
        print(f"    {st['calls_per_request']:6.2f}/req exec {st['exec_ms_per_request']:6.3f}"
              f" plan {st['plan_ms_per_request']:6.3f} ms/req  {where}{st['query'][:90]}")


def _commit() -> str:
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT,  # noqa: S607
                             capture_output=True, text=True, timeout=5, check=False)
        return out.stdout.strip()
    return ""


def save(test: str, target: Target, runs: list[Run], *, settings: dict[str, Any],
         database: str, problems: list[str]) -> Path:
    """Write the JSON results file and the plot; returns the JSON path."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    now = datetime.now(UTC)
    stem = RESULTS / f"{test}-{now:%Y%m%dT%H%M%SZ}"
    doc = {
        "test": test, "finished_at": now.isoformat(timespec="seconds"), "commit": _commit(),
        "host": {"cpus": os.cpu_count(), "loadavg": os.getloadavg()},
        "database": database, "settings": settings,
        "target": {"p99_ms": target.p99_ms, "rate": target.rate, "unit": target.unit,
                   "per_request": target.per_request},
        "runs": [{"workers": r.workers, "baseline_health_rps": round(r.baseline_health_rps),
                  "highest_sustained": None if r.best is None else r.best.summary(),
                  "steps": [s.summary() for s in r.steps]} for r in runs],
        "checks": {"passed": not problems, "problems": problems},
    }
    json_path = stem.with_suffix(".json")
    json_path.write_text(json.dumps(doc, indent=1) + "\n")
    png = plot(doc, stem.with_suffix(".png"))
    print(f"results: {json_path.relative_to(ROOT)}"
          + (f", plot: {png.relative_to(ROOT)}" if png else
             " (no plot: install the loadtest extra for matplotlib)"))
    return json_path


def plot(doc: dict[str, Any], path: Path) -> Path | None:
    """Latency (p50, p99; log scale) and CPU per request against achieved throughput."""
    try:
        import matplotlib as mpl
    except ImportError:
        return None
    mpl.use("Agg")
    import matplotlib.pyplot as plt

    target = doc["target"]
    unit, per = target["unit"], target["per_request"]
    fig, (lat, cpu) = plt.subplots(2, 1, figsize=(8, 8), sharex=True,
                                   gridspec_kw={"height_ratios": [3, 2]})
    colours = ["tab:blue", "tab:orange", "tab:green", "tab:red"]
    for i, run in enumerate(doc["runs"]):
        c = colours[i % len(colours)]
        steps = sorted(run["steps"], key=lambda s: s["offered_rps"])
        x = [s["achieved_rps"] * per for s in steps]
        _latencies(lat, run, steps, per, colour=c, label=f"{run['workers']} worker(s)")
        for part, style in (("server", "o-"), ("postgres", "^-")):
            cpu.plot(x, [s["cpu_ms_per_request"].get(part, 0.0) for s in steps], style,
                     color=c, label=f"{part}, {run['workers']} worker(s)")
    lat.axhline(target["p99_ms"], color="red", linestyle=":", label="p99 target")
    for ax in (lat, cpu):
        ax.axvline(target["rate"], color="grey", linestyle=":")
        ax.grid(True, which="both", alpha=0.3)
    lat.set_yscale("log")
    lat.set_ylabel("latency from intended send time (ms)")
    lat.legend(fontsize=8)
    lat.set_title(f"{doc['test']}: open loop, {doc['finished_at'][:10]}, commit "
                  f"{doc['commit'] or '?'} (★ highest rate holding p99)", fontsize=10)
    cpu.set_ylabel("CPU ms per request")
    cpu.set_xlabel(f"achieved throughput ({unit}; grey line: target)")
    cpu.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _latencies(lat: Any, run: dict[str, Any], steps: list[dict[str, Any]], per: float, *,
               colour: str, label: str, note: str = "") -> None:
    """A run's p99 (`note` added to its label) and p50 against achieved throughput, its
    highest sustained rate starred."""
    x = [s["achieved_rps"] * per for s in steps]
    lat.plot(x, [s["p99_ms"] for s in steps], "o-", color=colour, label=f"p99, {label}{note}")
    lat.plot(x, [s["p50_ms"] for s in steps], "s--", color=colour, alpha=0.6,
             label=f"p50, {label}")
    if best := run["highest_sustained"]:
        lat.plot([best["achieved_rps"] * per], [best["p99_ms"]], "*", color=colour,
                 markersize=16, markeredgecolor="black")


def compare(runs: list[tuple[str, dict[str, Any]]], path: Path, *, workers: int) -> Path:
    """One plot of several results files of one test (e.g. before and after a change) at
    `workers` workers: p99 and p50 against achieved throughput, CPU per request below."""
    import matplotlib as mpl

    mpl.use("Agg")
    import matplotlib.pyplot as plt

    target = runs[0][1]["target"]
    per = target["per_request"]
    fig, (lat, cpu) = plt.subplots(2, 1, figsize=(8, 8), sharex=True,
                                   gridspec_kw={"height_ratios": [3, 2]})
    colours = ["tab:grey", "tab:blue", "tab:green", "tab:red"]
    for i, (label, doc) in enumerate(runs):
        c = colours[i % len(colours)]
        run = next(r for r in doc["runs"] if r["workers"] == workers)
        steps = sorted(run["steps"], key=lambda s: s["offered_rps"])
        x = [s["achieved_rps"] * per for s in steps]
        shown = run["highest_sustained"] or steps[0]  # the statements where it held p99
        _latencies(lat, run, steps, per, colour=c, label=label,
                   note=f" ({shown['statements_per_request']} statements/request)")
        cpu.plot(x, [s["cpu_ms_per_request"].get("server", 0.0)
                     + s["cpu_ms_per_request"].get("postgres", 0.0) for s in steps], "o-",
                 color=c, label=f"server + PostgreSQL, {label}")
    lat.axhline(target["p99_ms"], color="red", linestyle=":", label="p99 target")
    for ax in (lat, cpu):
        ax.grid(True, which="both", alpha=0.3)
    lat.set_yscale("log")
    lat.set_ylabel("latency from intended send time (ms)")
    lat.legend(fontsize=8)
    lat.set_title(f"{runs[0][1]['test']}, {workers} worker(s), open loop "
                  "(★ highest rate holding p99)", fontsize=10)
    cpu.set_ylabel("CPU ms per request")
    cpu.set_xlabel(f"achieved throughput ({target['unit']})")
    cpu.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def main() -> None:
    """`python -m loadtests.report LABEL=results.json ... --out plot.png [--workers 2]`."""
    import argparse

    p = argparse.ArgumentParser(description="Plot results files of one load test together "
                                            "(e.g. before and after a change).")
    p.add_argument("runs", nargs="+", help="LABEL=path/to/results.json")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--workers", type=int, default=2)
    args = p.parse_args()
    runs = []
    for spec in args.runs:
        label, _, path = spec.partition("=")
        runs.append((label, json.loads(Path(path).read_text())))
    print(compare(runs, args.out, workers=args.workers))


if __name__ == "__main__":
    main()
