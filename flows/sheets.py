"""The register's file as a committee keeps it: an Excel workbook (`.xlsx`, its first sheet) or CSV,
in UTF-8 (with or without a BOM) or in GB18030 (what Chinese Excel writes), told apart by their
bytes, without the operator saying which. Either way: the header and each row as text, with the
row's number in the file (the sheet's row, the CSV's line) for the refusals to name.

Cells become text as the committee meant them: a number cell `101` (or `101.0`) is `101`; a text
cell `0101` stays `0101`. A cell Excel turned into a date (by any of its date formats, the Chinese
ones included), or an error value (`#N/A`), comes as a `Refusal`: the register refuses it where it
needs the column, since what was typed is lost.
"""

from __future__ import annotations

import csv
import io
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from xml.etree.ElementTree import ParseError

from flows.errors import Refused

XLSX_MAGIC = b"PK\x03\x04"  # a workbook is a zip archive
OLE_MAGIC = b"\xd0\xcf\x11\xe0"  # an old .xls workbook, or an encrypted .xlsx
# Excel's built-in date and time formats, the East Asian ones (27–36, 50–58) included, which
# openpyxl does not know: their cells come as plain numbers
DATE_FORMATS = {*range(14, 23), *range(27, 37), *range(45, 48), *range(50, 59)}
EXCEL_ERRORS = {"#NULL!", "#DIV/0!", "#VALUE!", "#REF!", "#NAME?", "#NUM!", "#N/A", "#GETTING_DATA"}


class Refusal(str):
    """A cell that cannot be taken as typed: its text, and why (refused where the column is needed)."""

    refusal: Refused

    def __new__(cls, text: str, refusal: Refused) -> Refusal:
        made = super().__new__(cls, text)
        made.refusal = refusal
        return made


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
    if data.startswith(OLE_MAGIC):
        raise Unreadable(
            [
                (
                    1,
                    Refused(
                        "The file is an old Excel workbook (.xls) or a protected one. Save it as .xlsx, without a password, and import it again."
                    ),
                )
            ]
        )
    return _csv(_decode(data))


def _decode(data: bytes) -> str:
    """UTF-8, else GB18030. A file that reads as UTF-8 Chinese up to a bad byte is UTF-8 that was
    damaged or pasted into: refused at that line, not read as GB18030 nonsense. (Some GB18030
    characters happen to be valid UTF-8 too, but never as Chinese.)"""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        before = data[: exc.start].decode("utf-8", errors="replace")
        if any("\u4e00" <= ch <= "\u9fff" for ch in before):
            line = data[: exc.start].count(b"\n") + 1
            raise Unreadable(
                [(line, Refused('The file is not UTF-8 text. Save it as "CSV UTF-8" and import it again.'))]
            ) from None
    try:
        return data.decode("gb18030").removeprefix("\ufeff")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
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

    return Table(_trimmed(header), rows())


def _trimmed(header: list[str]) -> list[str]:
    """The header's names, without the empty cells after the last one."""
    names = [h.strip() for h in header]
    while names and not names[-1]:
        names.pop()
    return names


def _workbook(data: bytes) -> Table:
    from openpyxl import load_workbook  # only where a workbook is imported
    from openpyxl.utils.exceptions import InvalidFileException

    broken = Unreadable([(1, Refused("The file is not an Excel workbook (.xlsx) that can be read."))])
    try:
        book = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
        sheet = book.worksheets[0]
        # the sheet's own record of its size may be wrong (some programs write it so): read it all
        sheet.reset_dimensions()
        found = sheet.iter_rows()
        header = _trimmed([_text(cell) for cell in next(found, ())])
    except (zipfile.BadZipFile, InvalidFileException, ParseError, KeyError, ValueError, IndexError, OSError):
        raise broken from None

    def rows() -> Iterator[tuple[int, list[str]]]:
        try:
            for number, cells in enumerate(found, start=2):
                texts = [_text(cell) for cell in cells]
                while len(texts) > len(header) and not texts[-1]:
                    texts.pop()
                texts += [""] * (len(header) - len(texts))
                yield number, texts
        except (ParseError, KeyError, ValueError, OSError):
            raise broken from None
        finally:
            book.close()

    return Table(header, rows())


def _text(cell: object) -> str:
    """A cell as the committee typed it; a `Refusal` where that is lost (a date, an error value)."""
    value = getattr(cell, "value", None)
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(value).upper()
    style = getattr(cell, "style_array", None)
    if isinstance(value, int | float) and style is not None and style.numFmtId in DATE_FORMATS:
        return Refusal(str(value), _dated(cell, f"#{style.numFmtId}"))
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else repr(value)
    if isinstance(value, datetime | date | time | timedelta):
        return Refusal(str(value), _dated(cell, str(value)))
    if getattr(cell, "data_type", "") == "e" or value in EXCEL_ERRORS:
        return Refusal(str(value), Refused(
            "Column {column} holds an Excel error ({value}): fix the formula, or type the value, and import again.",
            column=getattr(cell, "column_letter", "?"), value=str(value),
        ))  # fmt: skip
    return str(value)


def _dated(cell: object, shown: str) -> Refused:
    return Refused(
        "Column {column} holds a date ({value}): Excel turned what was typed into one. Format the column as text and type it again.",
        column=getattr(cell, "column_letter", "?"), value=shown,
    )  # fmt: skip
