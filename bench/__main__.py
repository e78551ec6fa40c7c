"""Run every benchmark and print a table: figure, target, ratio (above 1 meets the target).

`python -m bench WORD…` runs only those whose name contains one of the words (`make bench`
runs them all), e.g. `python -m bench broadcast WeChat`."""

from __future__ import annotations

import sys
import warnings

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
