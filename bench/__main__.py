"""Run every benchmark and print a table: figure, target, ratio (above 1 meets the target).

`steal` is the share of the machine's CPU time its host took during each benchmark (a virtual
machine's steal, from /proc/stat): where it is high, the figures read low.

`python -m bench WORD…` runs only those whose name contains one of the words (`make bench`
runs them all), e.g. `python -m bench broadcast WeChat`."""

from __future__ import annotations

import sys
import warnings
from pathlib import Path

from bench import (
    board,
    console,
    dispatcher,
    pg_workers,
    similar,
    startup,
    tg_broadcast,
    tg_updates,
    tg_votes,
    time_work,
    votes,
    wechat,
)
from bench.common import Result


def _cpu_times() -> tuple[int, int] | None:
    """(steal, all) of the machine's CPU time so far, in ticks (Linux), else None."""
    try:
        fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    except (OSError, ValueError):
        return None
    return (fields[7] if len(fields) > 7 else 0), sum(fields[:8])  # guest time is counted in user time


def _stolen(before: tuple[int, int] | None) -> str:
    """The share of the CPU time the host took from this machine since `before` (a virtual machine's
    steal): where it is high, every figure of the run reads low."""
    after = _cpu_times()
    if before is None or after is None or after[1] == before[1]:
        return "-"
    return f"{(after[0] - before[0]) / (after[1] - before[1]):.0%}"


def main() -> int:
    warnings.simplefilter("ignore")
    results: list[tuple[Result, str]] = []
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
        ("Telegram updates, yishi and an echo bot", tg_updates.run),
        ("Telegram button votes, polling on SQLite", tg_votes.polling),
        ("Telegram button votes, webhooks on PostgreSQL", tg_votes.webhooks),
        ("Telegram broadcast", tg_broadcast.alone),
        ("Telegram broadcast with busy groups", tg_broadcast.with_groups),
        ("WeChat callbacks on SQLite", wechat.sqlite),
        ("WeChat callbacks on PostgreSQL, two workers", wechat.postgres),
        ("the public board on SQLite", board.sqlite),
        ("the public board on PostgreSQL", board.postgres),
    )
    chosen = sys.argv[1:]
    for name, run in runs:
        if chosen and not any(word.lower() in name.lower() for word in chosen):
            continue
        print(f"running {name} …", file=sys.stderr, flush=True)
        before = _cpu_times()
        out = run()
        if out is None:
            print(f"  {name}: skipped (PostgreSQL not reachable)", file=sys.stderr)
            continue
        stolen = _stolen(before)
        results += [(r, stolen) for r in (out if isinstance(out, list) else [out])]
    print(f"{'benchmark':42} {'figure':>10} {'unit':8} {'target':>8} {'ratio':>6} {'steal':>5}  note")
    missed = []
    for r, stolen in results:
        target = "-" if r.target is None else ("≥" if r.higher_is_better else "≤") + f"{r.target:g}"
        ratio = "-" if r.ratio is None else f"{r.ratio:.2f}"
        print(f"{r.name:42} {r.figure:10.2f} {r.unit:8} {target:>8} {ratio:>6} {stolen:>5}  {r.note}")
        if r.ratio is not None and r.ratio < 1:
            missed.append(r.name)
    if missed:
        print(f"targets missed: {', '.join(missed)}")
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
