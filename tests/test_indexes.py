"""What is read after every delivery goes through an index, not the whole table: the groups' vote
messages kept current (a partial index whose condition each database's planner must find in the
query) and whether a person has a namesake in their community."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.sql import ClauseElement

from flows import outbox
from storage.db import Database
from storage.models import Ballot


def plan(db: Database, statement: ClauseElement) -> str:
    sql = statement.compile(dialect=db.engine.dialect, compile_kwargs={"literal_binds": True})
    with db.engine.begin() as conn:
        if db.engine.dialect.name == "sqlite":
            return "\n".join(str(row) for row in conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {sql}"))
        conn.exec_driver_sql("SET LOCAL enable_seqscan = off")  # the tables are small: where it *can* use one
        return "\n".join(row[0] for row in conn.exec_driver_sql(f"EXPLAIN {sql}"))


def test_the_live_vote_messages_are_found_by_their_index(db: Database) -> None:
    found = plan(db, outbox._LIVE)
    assert "ix_outbox_live" in found, found


def test_a_namesake_is_looked_for_by_name(db: Database) -> None:
    found = plan(db, outbox._ACCOUNTS.params(people=[1, 2]))
    if db.engine.dialect.name == "sqlite":  # not every person of the community read
        assert "ix_people_community_id_name" in found, found
    assert "Seq Scan on people" not in found, found


def test_a_polls_ballots_are_found_by_the_unique_index_alone(db: Database) -> None:
    """`ix_ballots_poll_id` is gone (one index page less written with each ballot): the unique
    (poll_id, unit_id) index serves what it did."""
    assert "ix_ballots_poll_id" not in {i["name"] for i in sa.inspect(db.engine).get_indexes("ballots")}
    found = plan(db, sa.select(sa.func.count(Ballot.id)).where(Ballot.poll_id == 1))
    assert ("SEARCH ballots" if db.engine.dialect.name == "sqlite" else "Index") in found, found
