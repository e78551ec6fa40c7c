"""Instructions a message costs, counted by valgrind's callgrind: unlike seconds, the same for the
same code whatever else the host runs (on a shared virtual machine the figures of `make bench`
vary by half from one hour to the next).

`python -m bench.instructions ballot|mix [N]` runs the same set-up twice under callgrind, once
followed by N messages, and prints the difference divided by N: per ballot (`ballot`: the votes
benchmark's first ballots, 2,000 households) or per support or comment (`mix`: the
console's mix, dispatched). Minutes, not seconds: callgrind runs Python some fifty times slower.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from datetime import UTC, datetime

from bench import console, votes
from bench.common import KEY, fresh_sqlite
from flows.clock import FixedClock
from flows.messages import Incoming
from handlers.dispatch import Dispatcher

WARM = 200  # messages before those counted: the statements compiled, the caches filled


def _ballots(n: int) -> None:
    dispatcher, residents = votes._prepare(fresh_sqlite("instructions"))
    for who in residents[: WARM + n]:
        dispatcher.handle(Incoming("bench", who, who, text="/vote 1 1"))


def _mix(n: int) -> None:
    db = fresh_sqlite("instructions")
    messages = console.mix(db, KEY)
    dispatcher = Dispatcher(db, FixedClock(datetime.now(UTC)), KEY)
    for message in messages[: WARM + n]:
        dispatcher.handle(message)


def _counted(kind: str, n: int) -> int:
    run = subprocess.run(
        ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", sys.executable, "-m", __spec__.name, kind, str(n), "--inside"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    found = re.search(r"Collected : (\d+)", run.stderr)
    assert found, run.stderr[-2000:]
    return int(found.group(1))


def main() -> int:
    kind, n = sys.argv[1] if len(sys.argv) > 1 else "", int(sys.argv[2]) if len(sys.argv) > 2 else 1000
    runs = {"ballot": (_ballots, 1500), "mix": (_mix, 3000)}
    inside = "--inside" in sys.argv  # the run counted: the set-up and n messages (n = 0: none)
    if kind not in runs or not (0 if inside else 1) <= n <= runs[kind][1]:
        print("usage: python -m bench.instructions ballot [N ≤ 1500] | mix [N ≤ 3000]", file=sys.stderr)
        return 2
    if inside:
        runs[kind][0](n)
        return 0
    if shutil.which("valgrind") is None:
        print("valgrind is not installed (Debian: apt install valgrind)", file=sys.stderr)
        return 1
    base, more = _counted(kind, 0), _counted(kind, n)
    print(f"{kind}: {(more - base) / n:,.0f} instructions a message ({n} messages after {WARM})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
