"""Shared set-up for the benchmarks: a migrated SQLite file and a large synthetic register."""

from __future__ import annotations

import csv
import io
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from flows import register
from storage.db import Database
from storage.migrate import upgrade
from storage.seal import BallotKey, new_key

NOW = datetime(2026, 12, 1, 2, 0, tzinfo=UTC)
KEY = BallotKey(new_key())  # the benchmarks' ballot key: no key file is made where they run


@dataclass(frozen=True)
class Result:
    name: str
    figure: float
    unit: str
    target: float | None  # None: a figure reported, with no target set
    higher_is_better: bool
    note: str = ""

    @property
    def ratio(self) -> float | None:
        """How far past the target: above 1 means the target is met."""
        if self.target is None:
            return None
        if self.higher_is_better:
            return self.figure / self.target
        return self.target / self.figure if self.figure else float("inf")


def fresh_sqlite(name: str) -> Database:
    path = Path(tempfile.mkdtemp(prefix="yishi-bench-")) / f"{name}.db"
    db = Database(f"sqlite:///{path}")
    upgrade(db.engine)
    return db


def register_csv(buildings: int, rooms: int, per_room: int = 1) -> bytes:
    """A community of `buildings` buildings in 4 grids, `rooms` households each."""
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\n")
    w.writerow(register.COLUMNS)
    for b in range(buildings):
        area, grid = f"片区{b % 2}", f"网格{b % 4}"
        for r in range(rooms):
            for k in range(per_room):
                w.writerow(["基准社区", area, grid, f"{b}栋", str(100 + r), f"居民{b}-{r}-{k}", "resident"])
    w.writerow(["基准社区", "", "", "", "", "委员甲", "committee"])
    return out.getvalue().encode()
