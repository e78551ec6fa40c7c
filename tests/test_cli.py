"""`yishi …` run for real, in a subprocess, against an SQLite file named by DATABASE_URL.

A subprocess costs about half a second, so the databases most tests start from are made
once per module, by the CLI itself (db upgrade → import → a console script), and copied.
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
import shutil
import sqlite3
import subprocess
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select

from flows import settings
from storage.db import Database
from storage.migrate import current_revision, head_revision
from storage.models import AuditChain, AuditLog, Base, Household, Invite, Issue, Person, Scope, Setting
from tests.harness import REGISTER, YISHI

NAMES = sorted({line.split(",")[5] for line in REGISTER.read_text(encoding="utf-8").splitlines()[1:]})
ISSUE_KEYS = {
    "id", "title", "scope", "status", "major", "supports", "supporting_households", "threshold",
    "comments", "created_at", "transitions", "polls", "items", "ratings",
}  # fmt: skip
CSV_FIELDS = [
    "id", "title", "scope", "status", "major", "supports", "supporting_households", "threshold",
    "comments", "created_at",
]  # fmt: skip
UTC_Z = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$")
RAISE_LIFT = ["/as 欧阳明", "/raise", "1栋电梯经常停运", "这个月已经停了三次,老人上下楼很困难。", "1", "yes"]
OWN_ENV = ("DATABASE_URL", "YISHI_", "TELEGRAM_", "WECHAT_", "WECOM_")


def run(
    *args: str,
    db: Path | None,
    cwd: Path,
    stdin: str = "",
    locale: str | None = "en",
    env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith(OWN_ENV)}
    environ["PYTHONUTF8"] = "1"
    if db is not None:
        environ["DATABASE_URL"] = f"sqlite:///{db}"
    if locale is not None:
        environ["YISHI_LOCALE"] = locale
    environ.update(env or {})
    return subprocess.run(
        [YISHI, *args],
        cwd=cwd,
        env=environ,
        input=stdin,
        capture_output=True,
        text=True,
        encoding="utf-8",
        timeout=120,
    )


def ok(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, f"exit {result.returncode}\n{result.stdout}\n{result.stderr}"
    return result.stdout


def copy_db(src: Path, dst: Path) -> Path:
    for suffix in ("", "-wal", "-shm"):
        if Path(f"{src}{suffix}").exists():
            shutil.copy(f"{src}{suffix}", f"{dst}{suffix}")
    return dst


def query(path: Path, work: Callable) -> object:  # type: ignore[type-arg]
    database = Database(f"sqlite:///{path}")
    try:
        with database.transaction() as session:
            return work(session)
    finally:
        database.dispose()


def snapshot(path: Path) -> dict[str, list[tuple]]:
    return query(
        path,
        lambda session: {
            t.name: sorted(map(tuple, session.execute(select(t)).all()), key=repr)
            for t in Base.metadata.sorted_tables
        },
    )  # type: ignore[return-value]


def count(path: Path, model: type) -> int:
    return query(path, lambda session: session.scalar(select(func.count()).select_from(model)))  # type: ignore[return-value]


def code_of(path: Path, name: str) -> str:
    return query(
        path,
        lambda session: session.scalar(select(Invite.code).join(Person).where(Person.name == name)),
    )  # type: ignore[return-value]


# --- databases made once, by the CLI ----------------------------------------------------


@pytest.fixture(scope="module")
def templates(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    where = tmp_path_factory.mktemp("cli-templates")
    upgraded = where / "upgraded.db"
    ok(run("db", "upgrade", db=upgraded, cwd=where))
    imported = copy_db(upgraded, where / "imported.db")
    ok(run("import", str(REGISTER), db=imported, cwd=where))
    active = copy_db(imported, where / "active.db")
    script = [
        f"/join {code_of(active, '刘洋')}",
        *RAISE_LIFT,
        "/as 李伟@1栋-102",
        "/support 1",
        "/comment 1 电梯该修了",
        "/as 王芳",
        "/support 1",
        "/as 陈静",
        "/raise",
        "2栋门口垃圾堆放",
        "垃圾桶满了没人清理",
        "1",
        "yes",
    ]
    ok(run("console", db=active, cwd=where, stdin="\n".join(script) + "\n"))
    statuses = query(active, lambda s: dict(s.execute(select(Issue.id, Issue.status)).all()))
    assert statuses == {1: "discussing", 2: "raised"}
    return {"upgraded": upgraded, "imported": imported, "active": active}


@pytest.fixture
def upgraded(templates: dict[str, Path], tmp_path: Path) -> Path:
    return copy_db(templates["upgraded"], tmp_path / "yishi.db")


@pytest.fixture
def imported(templates: dict[str, Path], tmp_path: Path) -> Path:
    return copy_db(templates["imported"], tmp_path / "yishi.db")


@pytest.fixture
def active(templates: dict[str, Path], tmp_path: Path) -> Path:
    return copy_db(templates["active"], tmp_path / "yishi.db")


# --- db upgrade, and the refusal of an old schema ---------------------------------------


def test_console_refuses_a_database_that_is_not_upgraded(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    sqlite3.connect(path).close()  # a file, but no migration run on it
    result = run("console", db=path, cwd=tmp_path, stdin="/as 欧阳明\n")
    assert result.returncode == 2
    assert "Run `yishi db upgrade` first." in result.stderr
    assert "欧阳明" not in result.stdout


@pytest.mark.parametrize("command", [("console",), ("export",), ("clock", "--once")])
def test_a_database_file_that_does_not_exist_is_named_and_not_created(tmp_path: Path, command: tuple) -> None:
    path = tmp_path / "typo.db"
    result = run(*command, db=path, cwd=tmp_path, locale="zh_CN")
    assert result.returncode == 2
    assert f"{path} 没有数据库" in result.stderr, result.stderr
    assert not path.exists()


def test_db_upgrade_brings_an_empty_database_to_the_newest_migration(tmp_path: Path) -> None:
    path = tmp_path / "new.db"
    out = ok(run("db", "upgrade", db=path, cwd=tmp_path))
    assert head_revision() in out
    database = Database(f"sqlite:///{path}")
    try:
        assert current_revision(database.engine) == head_revision()
    finally:
        database.dispose()
    ok(run("db", "upgrade", db=path, cwd=tmp_path))  # again: nothing to do, no error


def test_dotenv_in_the_working_directory_is_read(tmp_path: Path) -> None:
    path = tmp_path / "from-dotenv.db"
    (tmp_path / ".env").write_text(f"DATABASE_URL=sqlite:///{path}\n", encoding="utf-8")
    ok(run("db", "upgrade", db=None, cwd=tmp_path))
    assert path.exists() and not (tmp_path / "yishi.db").exists()


def test_a_bad_setting_in_the_environment_is_named(tmp_path: Path) -> None:
    result = run("db", "upgrade", db=tmp_path / "x.db", cwd=tmp_path, env={"YISHI_TIMEZONE": "Asia"})
    assert result.returncode != 0
    assert "YISHI_TIMEZONE" in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "x.db").exists()


# --- import -----------------------------------------------------------------------------


def test_import_prints_a_summary_and_reimport_changes_nothing(upgraded: Path, tmp_path: Path) -> None:
    out = ok(run("import", str(REGISTER), db=upgraded, cwd=tmp_path))
    assert "20 added, 0 updated, 0 unchanged, 0 moved out" in out
    assert (count(upgraded, Person), count(upgraded, Household), count(upgraded, Invite)) == (20, 14, 20)
    before = snapshot(upgraded)
    out = ok(run("import", str(REGISTER), db=upgraded, cwd=tmp_path))
    assert "0 added, 0 updated, 20 unchanged, 0 moved out" in out
    assert snapshot(upgraded) == before


BAD = "community,area,grid,building,room,name,role\n梧桐社区,东片区,东一网格,1栋,107,新邻居,resident\n"


@pytest.mark.parametrize(
    ("data", "locale", "expected"),
    [
        (
            (BAD + "梧桐社区,东片区,东一网格,1栋,108,王五,mayor\n").encode(),
            "en",
            "line 3: Unknown role mayor",
        ),
        (BAD.encode("utf-16"), "en", "line 1: The file is neither UTF-8 nor GB18030"),
        ((BAD + "梧桐社区,东片区,东一网格,,,王五,resident\n").encode(), "zh_CN", "第 3 行"),
    ],
    ids=["unknown-role", "utf-16", "in-chinese"],
)
def test_a_bad_file_is_refused_naming_the_line_and_nothing_is_written(
    imported: Path, tmp_path: Path, data: bytes, locale: str, expected: str
) -> None:
    register = tmp_path / "register.csv"
    register.write_bytes(data)
    before = snapshot(imported)
    result = run("import", str(register), db=imported, cwd=tmp_path, locale=locale)
    assert result.returncode != 0
    assert expected in result.stderr
    assert result.stdout == ""
    assert snapshot(imported) == before


@pytest.mark.parametrize(
    ("name", "locale", "expected"),
    [
        ("nowhere.csv", "en", "there is no such file"),
        ("nowhere.csv", "zh_CN", "没有这个文件"),
        (".", "zh_CN", "这是一个文件夹"),
    ],
)
def test_a_file_that_cannot_be_read_is_refused_in_the_operators_language(
    imported: Path, tmp_path: Path, name: str, locale: str, expected: str
) -> None:
    result = run("import", str(tmp_path / name), db=imported, cwd=tmp_path, locale=locale)
    assert result.returncode == 2
    assert expected in result.stderr and "Traceback" not in result.stderr


# --- invites ----------------------------------------------------------------------------


def unused_codes(path: Path) -> set[str]:
    return set(
        query(
            path,
            lambda s: s.scalars(
                select(Invite.code)
                .join(Person)
                .where(Invite.used_at.is_(None), Invite.revoked.is_(False), Person.moved_out.is_(False))
            ).all(),
        )  # type: ignore[arg-type]
    )


def test_invites_lists_each_unused_code_and_none_of_the_moved_out(active: Path, tmp_path: Path) -> None:
    rows = list(csv.reader(io.StringIO(ok(run("invites", db=active, cwd=tmp_path)))))
    assert rows[0] == ["name", "building", "room", "code"]
    body = rows[1:]
    assert len(body) == 19  # 刘洋 used theirs with /join
    assert "刘洋" not in {r[0] for r in body}
    assert {r[3] for r in body} == unused_codes(active)
    assert ["欧阳明", "1栋", "101", code_of(active, "欧阳明")] in body
    assert ["周书记", "", "", code_of(active, "周书记")] in body

    register = tmp_path / "register.csv"
    register.write_text(
        "\n".join(line for line in REGISTER.read_text(encoding="utf-8").splitlines() if ",王芳," not in line)
        + "\n",
        encoding="utf-8",
    )
    assert "1 moved out" in ok(run("import", str(register), db=active, cwd=tmp_path))
    rows = list(csv.reader(io.StringIO(ok(run("invites", db=active, cwd=tmp_path)))))
    assert len(rows) == 1 + 18
    assert "王芳" not in {r[0] for r in rows} and code_of(active, "王芳") not in {r[3] for r in rows}
    assert {r[3] for r in rows[1:]} == unused_codes(active)


def test_the_db_option_wins_over_database_url(imported: Path, tmp_path: Path) -> None:
    out = ok(run("invites", "--db", f"sqlite:///{imported}", db=tmp_path / "absent.db", cwd=tmp_path))
    assert len(out.splitlines()) == 21
    assert not (tmp_path / "absent.db").exists()


# --- settings ---------------------------------------------------------------------------


def test_settings_lists_the_rules(imported: Path, tmp_path: Path) -> None:
    out = ok(run("settings", db=imported, cwd=tmp_path))
    values = dict(re.findall(r"^(\w+) = (\S+)", out, flags=re.MULTILINE))
    assert set(values) == set(settings.RULES)
    assert values["timezone"] == "Asia/Shanghai"
    assert (values["support_percent"], values["support_window_days"]) == ("10", "14")


def test_a_setting_is_changed_and_audited(imported: Path, tmp_path: Path) -> None:
    out = ok(run("settings", "support_percent", "20", db=imported, cwd=tmp_path))
    assert out.strip() == "support_percent = 20"
    assert query(imported, lambda s: [(r.key, r.value) for r in s.scalars(select(Setting))]) == [
        ("support_percent", "20")
    ]
    last = query(imported, lambda s: s.scalars(select(AuditLog).order_by(AuditLog.id.desc())).first())
    assert (last.action, last.detail) == ("setting", {"key": "support_percent", "value": "20"})  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("support_percent", "0"),
        ("support_percent", "500"),
        ("quorum_magic", "1"),
        ("timezone", "Mars/Base"),
        ("timezone", "Asia"),
    ],
)
def test_a_bad_setting_is_refused_and_nothing_changes(
    imported: Path, tmp_path: Path, key: str, value: str
) -> None:
    before = snapshot(imported)
    result = run("settings", key, value, db=imported, cwd=tmp_path)
    assert result.returncode != 0
    assert value in result.stderr or key in result.stderr
    assert "Traceback" not in result.stderr
    assert snapshot(imported) == before


# --- the outbox and the groups, for the operator ----------------------------------------


def test_outbox_shows_what_waits_per_channel_and_retry_sends_a_failed_one_again(
    active: Path, tmp_path: Path
) -> None:
    with sqlite3.connect(active) as conn:  # 欧阳明's messages wait on Telegram; one of them failed
        conn.execute(
            "UPDATE accounts SET channel = 'telegram', external_id = '7001' WHERE external_id = 'person:1'"
        )
        conn.execute("UPDATE outbox SET sent_at = NULL WHERE person_id = 1")  # as if none had gone out
        conn.execute(
            "UPDATE outbox SET failed_at = created_at, error = 'Chat not found' WHERE id = (SELECT min(id) FROM outbox)"
        )
        failed = conn.execute("SELECT min(id) FROM outbox").fetchone()[0]
    out = ok(run("outbox", db=active, cwd=tmp_path))
    assert f"#{failed} failed → 欧阳明: Chat not found" in out and "telegram: " in out and "1 failed" in out
    assert f"Message #{failed} will be sent again." in ok(
        run("outbox", "retry", str(failed), db=active, cwd=tmp_path)
    )
    assert "0 failed" in ok(run("outbox", db=active, cwd=tmp_path))
    again = run("outbox", "retry", str(failed), db=active, cwd=tmp_path)
    assert again.returncode == 2 and f"There is no failed or held message #{failed}." in again.stderr


def test_groups_lists_the_bound_groups(active: Path, tmp_path: Path) -> None:
    assert "No group is bound to a scope yet" in ok(run("groups", db=active, cwd=tmp_path))
    script = ["/as 孙丽华", "/in 1栋群", "/linkgroup"]
    ok(run("console", db=active, cwd=tmp_path, stdin="\n".join(script) + "\n"))
    assert ok(run("groups", db=active, cwd=tmp_path)).splitlines() == [
        "梧桐社区/东片区/东一网格/1栋\tconsole\t1栋群"
    ]


# --- the audit chain --------------------------------------------------------------------


def test_audit_verify_holds_after_activity_and_names_a_tampered_row(active: Path, tmp_path: Path) -> None:
    rows = count(active, AuditLog)
    assert rows >= 6  # register, raise, supports, comment, status, raise
    out = ok(run("audit", "verify", db=active, cwd=tmp_path))
    head = query(active, lambda s: s.scalar(select(AuditChain).where(AuditChain.kind == "community")))
    assert f"梧桐社区: holds, {rows} rows; head #{rows} {head.hash}" in out
    assert "rows of no community: holds, 0 rows" in out and "(frozen): holds, 0 rows" in out
    assert ok(run("audit", "verify", "--community", "梧桐社区", db=active, cwd=tmp_path)).count("holds") == 1

    with sqlite3.connect(active) as conn:
        changed = conn.execute(
            "UPDATE audit_log SET detail = ? WHERE seq = 3", ('{"forged": true}',)
        ).rowcount
    assert changed == 1
    result = run("audit", "verify", db=active, cwd=tmp_path)
    assert result.returncode == 1
    assert "梧桐社区: broken at row #3: its content does not match its hash." in result.stdout, result.stdout
    assert "rows of no community: holds" in result.stdout  # the other chains are still checked
    wrong = run("audit", "verify", "--community", "无此社区", db=active, cwd=tmp_path)
    assert wrong.returncode == 2 and "无此社区" in wrong.stderr


# --- export -----------------------------------------------------------------------------


def test_export_json_is_the_public_record(active: Path, tmp_path: Path) -> None:
    text = ok(run("export", "--format", "json", db=active, cwd=tmp_path))
    data = json.loads(text)
    assert set(data) == {"community", "generated_at", "audit_head", "issues"}
    assert data["community"] == "梧桐社区"
    assert UTC_Z.match(data["generated_at"])
    community_head = select(AuditChain.hash).where(AuditChain.kind == "community")
    assert data["audit_head"] == query(active, lambda s: s.scalar(community_head))
    assert re.fullmatch(r"[0-9a-f]{64}", data["audit_head"])

    lift, litter = data["issues"]
    for issue in (lift, litter):
        assert set(issue) >= ISSUE_KEYS, ISSUE_KEYS - set(issue)
        assert isinstance(issue["id"], int) and isinstance(issue["major"], bool)
        assert UTC_Z.match(issue["created_at"])
        assert all(set(t) == {"status", "at"} and UTC_Z.match(t["at"]) for t in issue["transitions"])
        assert (issue["polls"], issue["items"], issue["ratings"]) == ([], [], {"count": 0, "average": None})
    assert {k: lift[k] for k in CSV_FIELDS if k != "created_at"} == {
        "id": 1,
        "title": "1栋电梯经常停运",
        "scope": "梧桐社区/东片区/东一网格/1栋",
        "status": "discussing",
        "major": False,
        "supports": 3,
        "supporting_households": 3,
        "threshold": 3,
        "comments": 1,
    }
    assert [t["status"] for t in lift["transitions"]] == ["raised", "discussing"]
    assert (litter["id"], litter["status"], litter["scope"]) == (2, "raised", "梧桐社区/东片区/东一网格/2栋")
    assert (litter["supports"], litter["threshold"], litter["comments"]) == (1, 3, 0)

    leaked = [name for name in NAMES if name in text]
    assert leaked == []
    codes = query(active, lambda s: s.scalars(select(Invite.code)).all())
    assert len(codes) == 20 and [c for c in codes if c in text] == []  # type: ignore[union-attr]


def test_export_csv_has_a_header_and_a_row_per_issue(active: Path, tmp_path: Path) -> None:
    rows = list(csv.DictReader(io.StringIO(ok(run("export", "--format", "csv", db=active, cwd=tmp_path)))))
    assert len(rows) == 2
    assert set(CSV_FIELDS) <= set(rows[0])
    assert [(r["id"], r["status"], r["supports"], r["threshold"]) for r in rows] == [
        ("1", "discussing", "3", "3"),
        ("2", "raised", "1", "3"),
    ]
    assert all(UTC_Z.match(r["created_at"]) for r in rows)


def test_several_communities_need_community(imported: Path, tmp_path: Path) -> None:
    other = tmp_path / "ginkgo.csv"
    other.write_text(
        "community,area,grid,building,room,name,role\n银杏社区,南片区,南一网格,9栋,901,钱多多,resident\n"
    )
    assert "1 added, 0 updated, 0 unchanged, 0 moved out" in ok(
        run("import", str(other), db=imported, cwd=tmp_path)
    )
    result = run("export", db=imported, cwd=tmp_path)
    assert result.returncode != 0 and "梧桐社区" in result.stderr and "银杏社区" in result.stderr
    data = json.loads(ok(run("export", "--community", "银杏社区", db=imported, cwd=tmp_path)))
    assert (data["community"], data["issues"]) == ("银杏社区", [])


# --- the console, on a script ------------------------------------------------------------


def test_console_runs_a_script_from_stdin(imported: Path, tmp_path: Path) -> None:
    script = [*RAISE_LIFT, "/as 李伟@1栋-102", "/comment 1 我也遇到过"]
    out = ok(run("console", db=imported, cwd=tmp_path, stdin="\n".join(script) + "\n", locale="zh_CN"))
    lines = out.splitlines()
    for expected in (
        "当前身份:欧阳明(1栋101)",
        "请输入议题标题:",
        "请描述具体情况:",
        "选择范围:",
        "[1] 本楼(1栋)",
        "[2] 本网格(东一网格)",
        "[4] 全社区(梧桐社区)",
        "[1] 发布",
        "已发布议题 #1,还需 2 户附议进入讨论。",
    ):
        assert expected in lines, f"{expected!r} not in:\n{out}"
    assert any(line.startswith("[→ 欧阳明] ") and "C1" in line for line in lines), out
    assert query(imported, lambda s: s.scalars(select(Issue.title)).all()) == ["1栋电梯经常停运"]


# --- the demo ---------------------------------------------------------------------------


def test_demo_makes_its_own_believable_community(tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere.db"
    result = run("demo", db=elsewhere, cwd=tmp_path, stdin="")
    path = tmp_path / "yishi-demo.db"
    assert path.exists()
    assert not (tmp_path / "yishi.db").exists() and not elsewhere.exists()
    assert result.returncode == 0, result.stderr
    assert "yishi-demo.db" in result.stdout

    def facts(s):  # type: ignore[no-untyped-def]
        return {
            "levels": dict(s.execute(select(Scope.level, func.count()).group_by(Scope.level)).all()),
            "households": s.scalar(select(func.count()).select_from(Household)),
            "people": s.scalar(select(func.count()).select_from(Person)),
            "roles": {r for roles in s.scalars(select(Person.roles)) for r in roles.split("|")},
            "statuses": set(s.scalars(select(Issue.status))),
        }

    found = query(path, facts)
    assert found["levels"] == {"community": 1, "area": 2, "grid": 4, "building": 6}  # type: ignore[index]
    assert 100 <= found["households"] <= 140  # type: ignore[index,operator]
    assert 150 <= found["people"] <= 260  # type: ignore[index,operator]
    assert {"resident", "building_leader", "grid_worker", "committee", "staff"} <= found["roles"]  # type: ignore[index,operator]
    assert len(found["statuses"]) >= 3, found["statuses"]  # type: ignore[index,arg-type]


def test_the_demo_serves_its_board_beside_the_console(tmp_path: Path) -> None:
    """`make demo`: the console in the terminal, and the board's address printed next to it."""
    environ = {k: v for k, v in os.environ.items() if not k.startswith(OWN_ENV)}
    environ |= {"PYTHONUTF8": "1", "YISHI_LOCALE": "en"}
    with subprocess.Popen(
        [YISHI, "demo"], cwd=tmp_path, env=environ, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True, encoding="utf-8",
    ) as demo:  # fmt: skip
        assert demo.stdout is not None and demo.stdin is not None
        try:
            lines = []
            for line in demo.stdout:
                lines.append(line)
                if line.startswith("Its public board"):
                    break
            found = re.search(r"(http://127\.0\.0\.1:\d+/c/1)$", lines[-1].strip())
            assert found, lines
            page = httpx.get(found.group(1), headers={"Accept-Language": "zh-CN"}, timeout=10)
            assert page.status_code == 200 and "梧桐社区" in page.text and "东片区晚上停车难" in page.text
            out, _ = demo.communicate("/as 欧阳明\n/issues\n", timeout=30)
        finally:
            demo.kill()
    assert demo.returncode == 0 and "东片区晚上停车难" in out


def test_the_demo_console_shows_time_at_work(tmp_path: Path) -> None:
    """Issue 4's demonstration: named reminders, a vote closing by itself, an action item reminded
    and escalated, and a digest, all from moving the console's clock."""
    script = "/clock +1d\n/clock +23h\n/clock +1h\n/clock +8d\n"
    out = run("demo", db=None, cwd=tmp_path, stdin=script).stdout
    lines = out.splitlines()
    moved = [n for n, line in enumerate(lines) if line.startswith("The clock is now")]
    assert len(moved) == 4, out

    def between(a: int, b: int) -> str:
        return "\n".join(lines[moved[a] : moved[b] if b < len(moved) else len(lines)])

    first, second, third, last = (between(i, i + 1) for i in range(4))
    assert "[→ 张秀英] Reminder: the vote on issue #2 closes in 24 hours" in first  # she has not voted
    assert "[→ 吴师傅] Action item #1 (在4栋旁增设垃圾分类投放点) is due within a day." in first
    assert "[→ 张秀英] Reminder: the vote on issue #2 closes in 2 hours" in second
    assert "[→ 欧阳明] The vote on issue #2 东片区晚上停车难 has closed: no quorum." in third
    assert "closes in" not in third and "has closed" not in first + second + last  # each at its time
    assert "[→ 郑海燕] Action item #1 (在4栋旁增设垃圾分类投放点) of issue #3 is seven days overdue" in last
    assert "[→ 周书记] Digest of your scopes (摘要)" in last
