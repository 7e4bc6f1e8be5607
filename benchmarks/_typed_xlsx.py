"""A fast .xlsx writer for benchmark inputs laid out the way Excel saves a sheet.

Unlike ``_xlsx.py`` (every cell an inline string), the cells keep the type a
user's sheet has: text in a shared-strings table (as Excel writes it), numbers
as number cells, true/false as boolean cells. openpyxl needs minutes for
Excel's maximum of 1,048,575 rows; writing the XML directly takes well under one.

A row is a sequence of cell values: ``str`` (text; "" is an empty cell),
``bool``, ``int`` or ``float`` (a number), ``None`` (an empty cell).
"""

from __future__ import annotations

import zipfile
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from xml.sax.saxutils import escape

CONTENT_TYPES = """<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">
<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>
<Default Extension="xml" ContentType="application/xml"/>
<Override PartName="/xl/workbook.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/>
<Override PartName="/xl/worksheets/sheet1.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/>
<Override PartName="/xl/sharedStrings.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sharedStrings+xml"/>
</Types>"""
ROOT_RELS = """<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">
<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" Target="xl/workbook.xml"/>
</Relationships>"""
WORKBOOK = """<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<workbook xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships">
<sheets><sheet name="{name}" sheetId="1" r:id="rId1"/></sheets></workbook>"""
WORKBOOK_RELS = """<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">
<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/worksheet" Target="worksheets/sheet1.xml"/>
<Relationship Id="rId2" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/sharedStrings" Target="sharedStrings.xml"/>
</Relationships>"""
SHEET_HEAD = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
    '<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">'
    '<dimension ref="A1:{last}"/><sheetData>'
)

Cell = str | bool | int | float | None


def _letters(count: int) -> list[str]:
    out = []
    for index in range(count):
        letters, n = "", index + 1
        while n:
            n, rest = divmod(n - 1, 26)
            letters = chr(65 + rest) + letters
        out.append(letters)
    return out


def write_typed_xlsx(
    path: Path,
    sheet: str,
    header: Sequence[str],
    rows: Iterable[Sequence[Cell]],
    count: int,
) -> None:
    """Write ``header`` and ``count`` data ``rows`` to one tab named ``sheet``."""
    letters = _letters(len(header))
    strings: dict[str, int] = {}
    references = 0

    def text(value: str) -> int:
        nonlocal references
        references += 1
        index = strings.get(value)
        if index is None:
            index = strings[value] = len(strings)
        return index

    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as book:
        book.writestr("[Content_Types].xml", CONTENT_TYPES)
        book.writestr("_rels/.rels", ROOT_RELS)
        book.writestr("xl/workbook.xml", WORKBOOK.format(name=escape(sheet)))
        book.writestr("xl/_rels/workbook.xml.rels", WORKBOOK_RELS)
        with book.open("xl/worksheets/sheet1.xml", "w", force_zip64=True) as out:
            out.write(SHEET_HEAD.format(last=f"{letters[-1]}{count + 1}").encode())
            buffer: list[str] = []
            buffer.append(_row(1, letters, header, text))
            for number, row in enumerate(rows, start=2):
                buffer.append(_row(number, letters, row, text))
                if len(buffer) >= 5000:
                    out.write("".join(buffer).encode())
                    buffer.clear()
            out.write("".join(buffer).encode())
            out.write(b"</sheetData></worksheet>")
        with book.open("xl/sharedStrings.xml", "w", force_zip64=True) as out:
            out.write(
                (
                    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
                    '<sst xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"'
                    f' count="{references}" uniqueCount="{len(strings)}">'
                ).encode()
            )
            buffer = []
            for value in strings:
                buffer.append(f"<si><t>{escape(value)}</t></si>")
                if len(buffer) >= 20000:
                    out.write("".join(buffer).encode())
                    buffer.clear()
            out.write("".join(buffer).encode())
            out.write(b"</sst>")


def _row(number: int, letters: list[str], row: Sequence[Cell], text: Callable[[str], int]) -> str:
    cells = []
    for letter, value in zip(letters, row, strict=False):
        if value is None or value == "":
            continue
        if isinstance(value, str):
            cells.append(f'<c r="{letter}{number}" t="s"><v>{text(value)}</v></c>')
        elif isinstance(value, bool):
            cells.append(f'<c r="{letter}{number}" t="b"><v>{int(value)}</v></c>')
        else:
            cells.append(f'<c r="{letter}{number}"><v>{value!r}</v></c>')
    return f'<row r="{number}">{"".join(cells)}</row>'
