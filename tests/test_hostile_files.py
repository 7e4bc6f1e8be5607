"""Hostile or stray sheet files end with exit 2 and a message, in bounded memory.

Each file is made here, small on disk, and read by the real CLI in a child process
under a memory limit (where the platform has one): a check that regresses makes the
reader ask for gigabytes, and the child fails instead of swapping.
"""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import pytest

# The child may map this much address space: the interpreter, python-calamine and
# the checks fit many times over; what a missed check asks for does not.
MEMORY_LIMIT = 2 << 30

CONTENT_TYPES = (
    '<?xml version="1.0" encoding="UTF-8"?><Types xmlns="http://schemas.openxmlformats.org/'
    'package/2006/content-types"><Default Extension="rels" ContentType="application/'
    'vnd.openxmlformats-package.relationships+xml"/><Default Extension="xml" '
    'ContentType="application/xml"/><Override PartName="/xl/workbook.xml" ContentType='
    '"application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/>'
    '<Override PartName="/xl/worksheets/sheet1.xml" ContentType="application/'
    'vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/></Types>'
)
ROOT_RELS = (
    '<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="http://schemas.'
    'openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="http://'
    "schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument"
    '" Target="xl/workbook.xml"/></Relationships>'
)
WORKBOOK = (
    '<?xml version="1.0" encoding="UTF-8"?><workbook xmlns="http://schemas.openxmlformats.'
    'org/spreadsheetml/2006/main" xmlns:r="http://schemas.openxmlformats.org/'
    'officeDocument/2006/relationships"><sheets><sheet name="Devices" sheetId="1" '
    'r:id="rId1"/></sheets></workbook>'
)
WORKBOOK_RELS = (
    '<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="http://schemas.'
    'openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="http://'
    "schemas.openxmlformats.org/officeDocument/2006/relationships/worksheet"
    '" Target="worksheets/sheet1.xml"/></Relationships>'
)
HEADER = (
    '<row r="1"><c r="A1" t="inlineStr"><is><t>serial</t></is></c>'
    '<c r="B1" t="inlineStr"><is><t>addr</t></is></c></row>'
)


def sheet_xml(cells: str, dimension: str = "") -> str:
    return (
        '<?xml version="1.0" encoding="UTF-8"?><worksheet xmlns="http://schemas.'
        f'openxmlformats.org/spreadsheetml/2006/main">{dimension}<sheetData>{cells}'
        "</sheetData></worksheet>"
    )


def write_xlsx(path: Path, sheet: str, **parts: Any) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("[Content_Types].xml", CONTENT_TYPES)
        archive.writestr("_rels/.rels", ROOT_RELS)
        archive.writestr("xl/workbook.xml", WORKBOOK)
        archive.writestr("xl/_rels/workbook.xml.rels", WORKBOOK_RELS)
        archive.writestr("xl/worksheets/sheet1.xml", sheet)
        for name, text in parts.items():
            archive.writestr(name, text)
    return path


def write_bomb(path: Path, member: str, before: bytes, filler: bytes, after: bytes) -> Path:
    """A workbook whose ``member`` holds 512 MiB of ``filler`` between two texts."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as archive:
        archive.writestr("[Content_Types].xml", CONTENT_TYPES)
        archive.writestr("_rels/.rels", ROOT_RELS)
        archive.writestr("xl/workbook.xml", WORKBOOK)
        archive.writestr("xl/_rels/workbook.xml.rels", WORKBOOK_RELS)
        if member != "xl/worksheets/sheet1.xml":
            archive.writestr("xl/worksheets/sheet1.xml", sheet_xml(HEADER))
        with archive.open(member, "w", force_zip64=True) as stream:
            stream.write(before)
            block = filler * (1 << 20)
            for _ in range(512):
                stream.write(block)
            stream.write(after)
    return path


def limit_memory() -> None:
    import resource

    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))


def run_cli(*args: str) -> tuple[int, str]:
    """The real CLI in a child process, its address space limited where the OS can."""
    result = subprocess.run(
        [sys.executable, "-m", "provisioner", *args],
        capture_output=True,
        text=True,
        preexec_fn=limit_memory if sys.platform != "win32" else None,
        check=False,
    )
    output = result.stdout + result.stderr
    assert "Traceback" not in output, output
    return result.returncode, output


def test_a_stray_value_in_the_last_cell_is_refused_before_it_is_read(tmp_path: Path) -> None:
    """One value in AMJ1048576 would make the reader ask for 32 GiB and abort."""
    cells = HEADER + '<row r="1048576"><c r="AMJ1048576" t="inlineStr"><is><t>x</t></is></c></row>'
    sheet = write_xlsx(tmp_path / "stray.xlsx", sheet_xml(cells))
    code, out = run_cli("validate", str(sheet))
    assert code == 2, out
    assert "stray.xlsx: the tab 'Devices' has cells up to AMJ1048576" in out
    assert "1,048,576 rows x 1,024 columns" in out
    assert "Delete it" in out and "--max-cells" in out


def test_a_stray_value_out_of_order_and_spelled_oddly_is_found(tmp_path: Path) -> None:
    """A cell out of its row, in single quotes with spaces: the reader takes it all the same."""
    cells = HEADER + "<row r='2'><c r = 'AMJ1048576' t='inlineStr'><is><t>x</t></is></c></row>"
    sheet = write_xlsx(tmp_path / "odd.xlsx", sheet_xml(cells))
    code, out = run_cli("validate", str(sheet))
    assert code == 2, out
    assert "has cells up to AMJ1048576" in out


def test_cells_without_references_are_counted_as_the_reader_counts_them(tmp_path: Path) -> None:
    """Rows and cells without r= are the next ones: 30,001 rows x 1,001 columns."""
    blank_rows = "<row/>" * 30_000
    wide_row = "<row>" + "<c/>" * 1_000 + '<c t="inlineStr"><is><t>x</t></is></c></row>'
    sheet = write_xlsx(tmp_path / "counted.xlsx", sheet_xml(HEADER + blank_rows + wide_row))
    code, out = run_cli("validate", str(sheet))
    assert code == 2, out
    assert "has cells up to ALM30002 (30,002 rows x 1,001 columns" in out


def test_a_declared_size_beyond_excel_is_refused(tmp_path: Path) -> None:
    sheet = write_xlsx(
        tmp_path / "declared.xlsx", sheet_xml(HEADER, '<dimension ref="A1:XFE2000000"/>')
    )
    code, out = run_cli("validate", str(sheet))
    assert code == 2, out
    assert "declares cells up to XFE2000000" in out and "beyond Excel's last cell" in out


@pytest.mark.parametrize(
    ("member", "before", "filler", "after"),
    [
        (  # one shared string of 512 MiB
            "xl/sharedStrings.xml",
            b'<?xml version="1.0"?><sst xmlns="http://schemas.openxmlformats.org/'
            b'spreadsheetml/2006/main" count="1" uniqueCount="1"><si><t>',
            b"a",
            b"</t></si></sst>",
        ),
        (  # 512 MiB of whitespace between two tags of the sheet
            "xl/worksheets/sheet1.xml",
            sheet_xml(HEADER).split("<sheetData>")[0].encode() + b"<sheetData>",
            b" ",
            b"</sheetData></worksheet>",
        ),
    ],
    ids=["shared-string", "whitespace"],
)
def test_a_zip_bomb_is_refused_from_the_zip_directory(
    tmp_path: Path, member: str, before: bytes, filler: bytes, after: bytes
) -> None:
    sheet = write_bomb(tmp_path / "bomb.xlsx", member, before, filler, after)
    assert sheet.stat().st_size < 4 << 20
    code, out = run_cli("validate", str(sheet))
    assert code == 2, out
    assert f"bomb.xlsx: the part {member} unpacks from" in out
    assert "it is a zip bomb" in out


def test_max_cells_lowers_and_raises_the_bound(tmp_path: Path) -> None:
    cells = HEADER + '<row r="2000"><c r="Z2000" t="inlineStr"><is><t>x</t></is></c></row>'
    sheet = write_xlsx(tmp_path / "wide.xlsx", sheet_xml(cells))
    code, out = run_cli("--max-cells", "50000", "validate", str(sheet))
    assert code == 2, out
    assert "Z2000 (2,000 rows x 26 columns = 52,000 cells, more than the 50,000" in out
    code, out = run_cli("--max-cells", "60000", "validate", str(sheet))
    assert code != 2, out


def test_a_csv_line_too_long_is_refused_by_its_number(tmp_path: Path) -> None:
    sheet = tmp_path / "long.csv"
    with sheet.open("wb") as file:
        file.write(b"serial,addr\n1,70B3D5E75E005001\n")
        file.write(b"x" * (3 << 20) + b"\n")
    code, out = run_cli("validate", str(sheet))
    assert code == 2, out
    assert "long.csv: line 3 is longer than 1,048,576 characters" in out


def test_a_csv_of_too_many_cells_is_refused(tmp_path: Path) -> None:
    sheet = tmp_path / "many.csv"
    sheet.write_text("serial,addr\n" + "1,2\n" * 100, encoding="utf-8")
    code, out = run_cli("--max-cells", "150", "validate", str(sheet))
    assert code == 2, out
    assert "many.csv: by line" in out and "more than 150 cells" in out


def test_a_sheet_within_the_bounds_reads_as_before(tmp_path: Path) -> None:
    """Cells in order, one row wider than the last: read, not refused."""
    cells = HEADER + (
        '<row r="2"><c r="A2" t="inlineStr"><is><t>1</t></is></c>'
        '<c r="C2" t="inlineStr"><is><t>note</t></is></c></row>'
        '<row r="3"><c r="A3" t="inlineStr"><is><t>2</t></is></c></row>'
    )
    sheet = write_xlsx(tmp_path / "fine.xlsx", sheet_xml(cells))
    code, out = run_cli("validate", str(sheet))
    assert code != 2, out
