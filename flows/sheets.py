"""The register's file as a committee keeps it: an Excel workbook (`.xlsx`, its first sheet) or CSV,
in UTF-8 (with or without a BOM) or in GB18030 (what Chinese Excel writes), told apart by their
bytes, without the operator saying which. Either way: the header and each row as text, with the
row's number in the file (the sheet's row, the CSV's line) for the refusals to name.

Cells become text as the committee meant them: a number cell `101` (or `101.0`) is `101`; a text
cell `0101` stays `0101`; a cell Excel turned into a date is refused, since what was typed is lost.
"""

from __future__ import annotations

import csv
import io
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, time

from flows.errors import Refused

XLSX_MAGIC = b"PK\x03\x04"  # a workbook is a zip archive


@dataclass
class Unreadable(Exception):
    """The file cannot be read as a table; each problem is (row, refusal)."""

    problems: list[tuple[int, Refused]] = field(default_factory=list)


@dataclass
class Table:
    header: list[str]
    rows: Iterator[tuple[int, list[str]]]  # (row number, cells), the header's row not among them


def read(data: bytes) -> Table:
    if data.startswith(XLSX_MAGIC):
        return _workbook(data)
    return _csv(_decode(data))


def _decode(data: bytes) -> str:
    """UTF-8, else GB18030. A file that reads as UTF-8 up to a bad byte (with Chinese before it) is
    UTF-8 that was damaged or pasted into: refused at that line, not read as GB18030 nonsense."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        if not data[: exc.start].isascii():
            raise Unreadable(
                [(line, Refused('The file is not UTF-8 text. Save it as "CSV UTF-8" and import it again.'))]
            ) from None
    try:
        return data.decode("gb18030")
    except UnicodeDecodeError:
        raise Unreadable(
            [
                (
                    line,
                    Refused(
                        'The file is neither UTF-8 nor GB18030 text. Save it from Excel as "CSV" or as a workbook (.xlsx) and import it again.'
                    ),
                )
            ]
        ) from None


def _csv(text: str) -> Table:
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader, [])
    except csv.Error as exc:
        raise Unreadable([(1, Refused("The line is not valid CSV: {reason}.", reason=str(exc)))]) from None

    def rows() -> Iterator[tuple[int, list[str]]]:
        try:
            for cells in reader:
                yield reader.line_num, cells
        except csv.Error as exc:
            raise Unreadable(
                [(reader.line_num, Refused("The line is not valid CSV: {reason}.", reason=str(exc)))]
            ) from None

    return Table([h.strip() for h in header], rows())


def _workbook(data: bytes) -> Table:
    from openpyxl import load_workbook  # only where a workbook is imported

    try:
        book = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except (zipfile.BadZipFile, KeyError, ValueError, OSError):
        raise Unreadable(
            [(1, Refused("The file is not an Excel workbook (.xlsx) that can be read."))]
        ) from None
    sheet = book.worksheets[0]
    found = sheet.iter_rows(values_only=True)
    first = next(found, ())
    header = [_text(v, 1, n) for n, v in enumerate(first)]
    while header and not header[-1]:
        header.pop()

    def rows() -> Iterator[tuple[int, list[str]]]:
        problems = []
        for number, values in enumerate(found, start=2):
            cells = []
            for n, value in enumerate(values):
                try:
                    cells.append(_text(value, number, n))
                except Unreadable as exc:
                    problems += exc.problems
                    cells.append("")
            while len(cells) > len(header) and not cells[-1]:
                cells.pop()
            cells += [""] * (len(header) - len(cells))
            yield number, cells
        book.close()
        if problems:
            raise Unreadable(problems)

    return Table([h.strip() for h in header], rows())


def _text(value: object, row: int, column: int) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(value).upper()
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else repr(value)
    if isinstance(value, datetime | date | time):
        raise Unreadable(
            [(row, Refused(
                "Column {column} holds a date ({value}): Excel turned what was typed into one. Format the column as text and type it again.",
                column=_letter(column), value=str(value),
            ))]
        )  # fmt: skip
    return str(value)


def _letter(column: int) -> str:
    """A column's letter as Excel shows it (0 → A, 26 → AA)."""
    name = ""
    column += 1
    while column:
        column, rest = divmod(column - 1, 26)
        name = chr(ord("A") + rest) + name
    return name
