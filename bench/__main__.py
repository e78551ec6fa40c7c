"""Run every benchmark and print a table: figure, target, ratio (above 1 meets the target)."""

from __future__ import annotations

import sys
import warnings

from bench import console, dispatcher, pg_workers, similar, startup, time_work, votes
from bench.common import Result


def main() -> int:
    warnings.simplefilter("ignore")
    results: list[Result] = []
    runs = (
        ("startup", startup.run),
        ("similar", similar.run),
        ("console from outside", console.run),
        ("dispatcher", dispatcher.run),
        ("dispatcher alone, the console's mix", console.dispatcher_alone),
        ("votes on SQLite", votes.sqlite),
        ("votes on PostgreSQL", votes.postgres),
        ("ballots on PostgreSQL from worker processes", pg_workers.workers),
        ("a ballot's latency while votes open elsewhere", pg_workers.latency),
        ("reminders", time_work.reminders),
        ("digest", time_work.committee_digest),
    )
    for name, run in runs:
        print(f"running {name} …", file=sys.stderr, flush=True)
        out = run()
        if out is None:
            print(f"  {name}: skipped (PostgreSQL not reachable)", file=sys.stderr)
            continue
        results += out if isinstance(out, list) else [out]
    print(f"{'benchmark':42} {'figure':>10} {'unit':8} {'target':>8} {'ratio':>6}  note")
    missed = []
    for r in results:
        target = "-" if r.target is None else ("≥" if r.higher_is_better else "≤") + f"{r.target:g}"
        ratio = "-" if r.ratio is None else f"{r.ratio:.2f}"
        print(f"{r.name:42} {r.figure:10.2f} {r.unit:8} {target:>8} {ratio:>6}  {r.note}")
        if r.ratio is not None and r.ratio < 1:
            missed.append(r.name)
    if missed:
        print(f"targets missed: {', '.join(missed)}")
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
