"""`yishi console`: from start to the first prompt, and the process's peak memory."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from bench.common import Result, fresh_sqlite


def run() -> list[Result]:
    db = fresh_sqlite("startup")
    url = db.url
    db.dispose()
    yishi = str(Path(sys.executable).with_name("yishi"))
    env = dict(os.environ, DATABASE_URL=url, PYTHONUNBUFFERED="1")
    times, peaks = [], []
    for _ in range(5):
        start = time.perf_counter()
        proc = subprocess.Popen([yishi, "console"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env)
        assert proc.stdout is not None and proc.stdin is not None
        proc.stdout.readline()  # the banner: the console is ready for its first line
        times.append(time.perf_counter() - start)
        proc.stdin.close()
        proc.stdout.read()
        _, _, usage = os.wait4(proc.pid, 0)
        peaks.append(usage.ru_maxrss / 1024)
    return [
        Result(
            "console start to first prompt", sorted(times)[len(times) // 2], "s", 1.5, False, "median of 5"
        ),
        Result("console peak memory (RSS)", max(peaks), "MiB", None, False, "max of 5; reported, no target"),
    ]
