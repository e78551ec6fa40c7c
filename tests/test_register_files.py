"""The register as the committee keeps it: an Excel workbook (numbers, dates, leading zeros, empty
rows, a second sheet), CSV saved by Chinese Excel (GB18030) or with a BOM; `yishi import
--dry-run`; and `yishi invites --format html` (the slips to print; in a browser in
tests/test_slips_browser.py)."""

from __future__ import annotations

import io
import re
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest
from openpyxl import Workbook
from sqlalchemy import func, select

from flows import register
from flows.register import COLUMNS, RegisterInvalid
from storage.db import Database
from storage.models import Household, Invite, Person, Scope
from tests.conftest import REGISTER, START
from tests.test_cli import run
from tests.test_register import snapshot

ROWS = [row.split(",") for row in REGISTER.read_text(encoding="utf-8").splitlines()[1:]]


def workbook(rows: list[list[object]], header: list[object] = list(COLUMNS), second: bool = True) -> bytes:  # noqa: B006
    """A workbook whose first sheet holds the register; a second sheet with notes, to be ignored."""
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.title = "居民名册"
    sheet.append(header)
    for row in rows:
        sheet.append(row)
    if second:
        notes = book.create_sheet("说明")
        notes.append(["这一页不是名册", 1, 2, 3])
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def people(db: Database) -> dict[str, tuple[str, str]]:
    """Each person's building and room."""
    with db.transaction() as session:
        found = session.execute(
            select(Person.name, Household.room, Household.building_id).join(
                Household, Household.id == Person.household_id
            )
        ).all()
    return {name: (str(building), room) for name, room, building in found}


def test_a_workbook_is_imported_with_rooms_as_the_committee_meant_them(db: Database) -> None:
    rows: list[list[object]] = [list(r) for r in ROWS]
    rows[0][4] = 101  # a number cell
    rows[2][4] = 102.0  # a number Excel keeps as a float
    rows[3][4] = "0103"  # text: the leading zero stays
    rows.insert(5, [None] * 7)  # an empty row
    rows.insert(6, ["", "", "", "", "", "", ""])
    with db.transaction() as session:
        summary = register.import_file(session, workbook(rows), START)
    assert summary.added == len(ROWS)
    with db.transaction() as session:
        found = set(
            session.execute(
                select(Person.name, Household.room).join(Household, Household.id == Person.household_id)
            )
        )
    assert {(r[5], r[4]) for r in ROWS[4:] if r[4]} <= found  # the rest as the CSV has them
    assert {(ROWS[0][5], "101"), (ROWS[2][5], "102"), (ROWS[3][5], "0103")} <= found


def test_the_same_register_from_csv_and_from_a_workbook_is_the_same(db: Database) -> None:
    with db.transaction() as session:
        register.import_file(session, REGISTER.read_bytes(), START)
    before = snapshot(db)
    with db.transaction() as session:
        again = register.import_file(session, workbook([list(r) for r in ROWS]), START)
    assert (again.added, again.updated, again.moved_out) == (0, 0, 0) and again.unchanged == len(ROWS)
    assert snapshot(db) == before


def test_a_date_excel_made_of_a_room_is_refused_with_its_row_and_a_hint(db: Database) -> None:
    from datetime import datetime

    rows: list[list[object]] = [list(r) for r in ROWS]
    rows[3][4] = datetime(2026, 1, 1)  # `1-101` typed, and Excel took it for a date
    rows[5][6] = "mayor"  # and a bad role further down: both named
    before = snapshot(db)
    with pytest.raises(RegisterInvalid) as refused, db.transaction() as session:
        register.import_file(session, workbook(rows), START)
    problems = {line: refusal for line, refusal in refused.value.problems}
    assert set(problems) == {5, 7}  # the sheet's row numbers: the header is row 1
    date = problems[5]
    assert date.params["column"] == "E" and "Format the column as text" in date.msgid
    assert snapshot(db) == before


def test_a_workbook_whose_header_is_wrong_is_refused() -> None:
    with pytest.raises(RegisterInvalid) as refused:
        register.parse(workbook([list(r) for r in ROWS], header=["小区", "楼栋", "房号", "姓名"]))
    assert refused.value.problems[0][0] == 1 and "Missing columns" in refused.value.problems[0][1].msgid


def test_a_damaged_workbook_is_refused() -> None:
    with pytest.raises(RegisterInvalid) as refused:
        register.parse(b"PK\x03\x04 not really a workbook")
    assert "not an Excel workbook" in refused.value.problems[0][1].msgid


@pytest.mark.parametrize("encoding", ["gb18030", "utf-8-sig", "utf-8"])
def test_csv_in_gb18030_or_utf8_with_or_without_a_bom(db: Database, encoding: str) -> None:
    data = REGISTER.read_text(encoding="utf-8").encode(encoding)
    with db.transaction() as session:
        summary = register.import_file(session, data, START)
    assert summary.added == len(ROWS)
    assert set(people(db)) == {r[5] for r in ROWS if r[4]}  # the names read right, whatever the bytes


def test_a_dry_run_says_what_would_change_and_writes_nothing(sqlite_db: Database, tmp_path: Path) -> None:
    db_path = Path(sqlite_db.url.removeprefix("sqlite:///"))
    first = tmp_path / "名册.xlsx"
    first.write_bytes(workbook([list(r) for r in ROWS]))
    assert run("import", str(first), db=db_path, cwd=tmp_path).returncode == 0
    before = snapshot(sqlite_db)
    changed = [list(r) for r in ROWS[1:]]  # the first person moved out
    changed[0][6] = "resident|building_leader"  # one more role
    changed.append(["梧桐社区", "东片区", "东一网格", "1栋", "108", "新邻居", "resident"])
    second = tmp_path / "名册-新.csv"
    second.write_bytes("\n".join(",".join(map(str, r)) for r in [list(COLUMNS), *changed]).encode("gb18030"))
    done = run("import", "--dry-run", str(second), db=db_path, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    first_one, leader = ROWS[0], changed[0]
    assert done.stdout.splitlines() == [
        f"{leader[5]} {leader[3]} {leader[4]}: would be updated",
        "新邻居 1栋 108: would be added",
        f"{first_one[5]} {first_one[3]} {first_one[4]}: would move out",
        f"A dry run, nothing written: 1 would be added, 1 updated, {len(ROWS) - 2} unchanged, 1 moved out.",
    ]
    assert snapshot(sqlite_db) == before
    bad = tmp_path / "坏.xlsx"
    rows: list[list[object]] = [list(r) for r in ROWS]
    rows[0][6] = "mayor"
    bad.write_bytes(workbook(rows))
    refused = run("import", "--dry-run", str(bad), db=db_path, cwd=tmp_path)
    assert refused.returncode == 2 and "line 2: Unknown role mayor" in refused.stderr
    assert snapshot(sqlite_db) == before


def test_the_slips_page_has_a_slip_for_each_unused_code_of_the_building(
    sqlite_db: Database, tmp_path: Path
) -> None:
    db_path = Path(sqlite_db.url.removeprefix("sqlite:///"))
    assert run("import", str(REGISTER), db=db_path, cwd=tmp_path).returncode == 0
    with sqlite_db.transaction() as session:
        codes = dict(
            session.execute(
                select(Person.name, Invite.code)
                .join(Invite, Invite.person_id == Person.id)
                .join(Household, Household.id == Person.household_id)
                .where(Household.room.like("1%"))
            ).all()
        )
        others = session.scalar(select(func.count(Invite.code))) or 0
    done = run(
        "invites", "--format", "html", "--building", "1栋", db=db_path, cwd=tmp_path, locale="zh_CN",
        env={"WECHAT_ACCOUNT_NAME": "梧桐社区议事"},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    page = done.stdout
    shown = set(re.findall(r'<p class="code">([A-Z0-9]+)</p>', page))
    building_1 = {r[5] for r in ROWS if r[3] == "1栋"}
    assert shown == {code for name, code in codes.items() if name in building_1} and len(shown) < others
    assert "微信：关注公众号「梧桐社区议事」，发送：加入 " in page and "@page { size: A4" in page
    assert "<svg" not in page  # no Telegram bot configured: no QR code
    nobody = run("invites", "--format", "html", "--building", "99栋", db=db_path, cwd=tmp_path)
    assert nobody.returncode == 1 and "Nobody in building 99栋 has an unused code." in nobody.stderr


def patched(book: bytes, part: str, change: Callable[[str], str]) -> bytes:
    """The workbook with one of its XML parts changed, as other programs write them."""
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(book)) as source, zipfile.ZipFile(out, "w") as target:
        for item in source.infolist():
            data = source.read(item.filename)
            if item.filename == part:
                data = change(data.decode()).encode()
            target.writestr(item, data)
    return out.getvalue()


def test_a_sheet_that_misstates_its_size_is_read_whole() -> None:
    book = workbook([list(r) for r in ROWS])
    wrong = patched(
        book,
        "xl/worksheets/sheet1.xml",
        lambda xml: re.sub(r'<dimension ref="[^"]+"', '<dimension ref="A1:G4"', xml),
    )
    assert len(register.parse(wrong)) == len(ROWS)


def test_a_date_in_a_chinese_format_is_refused_too(db: Database) -> None:
    from datetime import datetime

    rows: list[list[object]] = [list(r) for r in ROWS]
    rows[1][4] = datetime(2026, 1, 1)
    book = workbook(rows)  # openpyxl writes the date with format 14: made one of Excel's Chinese ones
    chinese = patched(book, "xl/styles.xml", lambda xml: xml.replace('numFmtId="14"', 'numFmtId="31"'))
    with pytest.raises(RegisterInvalid) as refused:
        register.parse(chinese)
    assert [(line, r.params["column"]) for line, r in refused.value.problems] == [(3, "E")]


def test_a_date_in_a_column_the_register_does_not_use_is_no_matter(db: Database) -> None:
    from datetime import date

    rows: list[list[object]] = [[*r, date(1950, 3, 1)] for r in ROWS]
    with db.transaction() as session:
        summary = register.import_file(session, workbook(rows, header=[*COLUMNS, "出生日期"]), START)
    assert summary.added == len(ROWS)


def test_an_excel_error_in_a_cell_is_refused_with_its_row() -> None:
    rows: list[list[object]] = [list(r) for r in ROWS]
    rows[2][4] = "#N/A"
    with pytest.raises(RegisterInvalid) as refused:
        register.parse(workbook(rows))
    (line, refusal), *_ = refused.value.problems
    assert line == 4 and "Excel error" in refusal.msgid and refusal.params["value"] == "#N/A"


@pytest.mark.parametrize(
    ("data", "says"),
    [
        (b"PK\x03\x04 not really a workbook", "not an Excel workbook"),
        (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1 an old one", "old Excel workbook (.xls)"),
    ],
)
def test_a_workbook_that_cannot_be_read_is_refused_in_words(data: bytes, says: str) -> None:
    with pytest.raises(RegisterInvalid) as refused:
        register.parse(data)
    assert says in refused.value.problems[0][1].msgid


def test_a_truncated_workbook_is_refused_in_words() -> None:
    book = workbook([list(r) for r in ROWS])
    cut = patched(book, "xl/worksheets/sheet1.xml", lambda xml: xml[: len(xml) // 2])
    with pytest.raises(RegisterInvalid) as refused:
        register.parse(cut)
    assert "not an Excel workbook" in refused.value.problems[0][1].msgid


def test_chinese_that_also_reads_as_utf8_is_taken_as_gb18030(db: Database) -> None:
    """平 in GB18030 is C6 BD, which is valid UTF-8 too (as Ʋ): the file is GB18030 all the same."""
    text = REGISTER.read_text(encoding="utf-8").replace("梧桐社区", "平安社区")
    with db.transaction() as session:
        register.import_file(session, ("\ufeff" + text).encode("gb18030"), START)
        assert session.scalar(select(func.count()).select_from(Person)) == len(ROWS)
        assert "平安社区" in session.scalars(select(Scope.name)).all()
