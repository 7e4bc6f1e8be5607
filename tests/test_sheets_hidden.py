"""What the user cannot see: hidden rows, columns and tabs; and CSV cells of any size."""

from __future__ import annotations

import csv
import zipfile
from pathlib import Path

import openpyxl
import pytest

from provisioner.sheets import Table, Workbook, open_workbook

MAIN = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
REL = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
PACKAGE = "http://schemas.openxmlformats.org/package/2006"


def devices(rows: int = 6, columns: str = "ABCDEFG") -> openpyxl.Workbook:
    """A Devices tab with a header in row 1 and ``rows`` rows of data below."""
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    assert sheet is not None
    sheet.title = "Devices"
    sheet.append([f"field {letter}" for letter in columns])
    for number in range(2, rows + 2):
        sheet.append([f"{letter}{number}" for letter in columns])
    return workbook


def opened(workbook: openpyxl.Workbook, path: Path) -> tuple[Workbook, Table]:
    workbook.save(path)
    book = open_workbook(path)
    return book, book.table(book.tab_names[0])


def handmade_xlsx(path: Path, worksheet: str) -> Path:
    """An xlsx whose one worksheet XML is given whole; its part has an odd name."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(
            "[Content_Types].xml",
            f'<Types xmlns="{PACKAGE}/content-types">'
            '<Default Extension="rels" '
            'ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
            '<Default Extension="xml" ContentType="application/xml"/>'
            '<Override PartName="/xl/workbook.xml" ContentType="application/'
            'vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/>'
            '<Override PartName="/xl/worksheets/devices.xml" ContentType="application/'
            'vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/>'
            "</Types>",
        )
        archive.writestr(
            "_rels/.rels",
            f'<Relationships xmlns="{PACKAGE}/relationships">'
            f'<Relationship Id="rId1" Type="{REL}/officeDocument" Target="xl/workbook.xml"/>'
            "</Relationships>",
        )
        archive.writestr(
            "xl/workbook.xml",
            f'<workbook xmlns="{MAIN}" xmlns:r="{REL}"><sheets>'
            '<sheet name="Devices" sheetId="1" r:id="rId9"/></sheets></workbook>',
        )
        archive.writestr(
            "xl/_rels/workbook.xml.rels",
            f'<Relationships xmlns="{PACKAGE}/relationships">'
            f'<Relationship Id="rId9" Type="{REL}/worksheet" Target="worksheets/devices.xml"/>'
            "</Relationships>",
        )
        archive.writestr(
            "xl/worksheets/devices.xml", f'<worksheet xmlns="{MAIN}">{worksheet}</worksheet>'
        )
    return path


def inline_row(number: int | None, texts: list[str], attributes: str = "") -> str:
    ref = f' r="{number}"' if number is not None else ""
    cells = "".join(f'<c t="inlineStr"><is><t>{text}</t></is></c>' for text in texts)
    return f"<row{ref}{attributes}>{cells}</row>"


def handmade_ods(path: Path, tables: str, styles: str = "") -> Path:
    office = "urn:oasis:names:tc:opendocument:xmlns:office:1.0"
    content = (
        f'<office:document-content xmlns:office="{office}" '
        'xmlns:table="urn:oasis:names:tc:opendocument:xmlns:table:1.0" '
        'xmlns:text="urn:oasis:names:tc:opendocument:xmlns:text:1.0" '
        'xmlns:style="urn:oasis:names:tc:opendocument:xmlns:style:1.0" office:version="1.2">'
        f"<office:automatic-styles>{styles}</office:automatic-styles>"
        f"<office:body><office:spreadsheet>{tables}</office:spreadsheet></office:body>"
        "</office:document-content>"
    )
    manifest = (
        '<manifest:manifest xmlns:manifest="urn:oasis:names:tc:opendocument:xmlns:manifest:1.0" '
        'manifest:version="1.2"><manifest:file-entry manifest:full-path="/" '
        'manifest:media-type="application/vnd.oasis.opendocument.spreadsheet"/>'
        '<manifest:file-entry manifest:full-path="content.xml" manifest:media-type="text/xml"/>'
        "</manifest:manifest>"
    )
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr(
            zipfile.ZipInfo("mimetype"),
            "application/vnd.oasis.opendocument.spreadsheet",
            compress_type=zipfile.ZIP_STORED,
        )
        archive.writestr("content.xml", content, compress_type=zipfile.ZIP_DEFLATED)
        archive.writestr("META-INF/manifest.xml", manifest, compress_type=zipfile.ZIP_DEFLATED)
    return path


def ods_row(texts: list[str], attributes: str = "") -> str:
    cells = "".join(
        f'<table:table-cell office:value-type="string"><text:p>{text}</text:p></table:table-cell>'
        if text
        else "<table:table-cell/>"
        for text in texts
    )
    return f"<table:table-row{attributes}>{cells}</table:table-row>"


# --- xlsx: rows ----------------------------------------------------------------------


def test_hidden_rows_are_listed_and_still_read(tmp_path: Path) -> None:
    workbook = devices()
    sheet = workbook.active
    assert sheet is not None
    sheet.row_dimensions[3].hidden = True
    sheet.row_dimensions[5].hidden = True
    sheet.row_dimensions[6].hidden = True
    _, table = opened(workbook, tmp_path / "site.xlsx")
    assert table.hidden_rows == [3, 5, 6]
    assert table.hidden_columns == []
    assert table.row_numbers == [2, 3, 4, 5, 6, 7]
    assert table.rows[1][0] == "A3"


def test_hidden_header_row_is_listed(tmp_path: Path) -> None:
    workbook = devices(rows=2)
    sheet = workbook.active
    assert sheet is not None
    sheet.row_dimensions[1].hidden = True
    _, table = opened(workbook, tmp_path / "site.xlsx")
    assert (table.header_row, table.hidden_rows) == (1, [1])
    assert table.headers[0] == "field A"


def test_hidden_blank_rows_are_not_listed(tmp_path: Path) -> None:
    workbook = devices(rows=3)
    sheet = workbook.active
    assert sheet is not None
    sheet.insert_rows(3)  # row 3 blank: skipped, and so not hidden data
    for number in (3, 40, 1000):
        sheet.row_dimensions[number].hidden = True
    _, table = opened(workbook, tmp_path / "site.xlsx")
    assert table.row_numbers == [2, 4, 5]
    assert table.hidden_rows == []


def test_rows_hidden_by_a_filter_or_a_collapsed_group(tmp_path: Path) -> None:
    workbook = devices(rows=8)
    sheet = workbook.active
    assert sheet is not None
    sheet.auto_filter.ref = "A1:G9"
    sheet.row_dimensions[2].hidden = True  # filtered out: Excel writes hidden="1"
    sheet.row_dimensions.group(7, 9, hidden=True)
    _, table = opened(workbook, tmp_path / "site.xlsx")
    assert table.hidden_rows == [2, 7, 8, 9]


# --- xlsx: columns ---------------------------------------------------------------------


def test_hidden_column_and_range_of_columns(tmp_path: Path) -> None:
    workbook = devices()
    sheet = workbook.active
    assert sheet is not None
    sheet.column_dimensions["B"].hidden = True
    sheet.column_dimensions.group("D", "F", hidden=True)
    _, table = opened(workbook, tmp_path / "site.xlsx")
    assert table.columns == ["A", "B", "C", "D", "E", "F", "G"]
    assert table.hidden_columns == ["B", "D", "E", "F"]
    assert table.hidden_rows == []
    assert table.headers[1] == "field B"
    assert table.rows[0][4] == "E2"


def test_only_hidden_columns_of_the_table_are_listed(tmp_path: Path) -> None:
    """Hiding every column right of the data (K:XFD) is a common tidy-up: nothing is read there."""
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    assert sheet is not None
    sheet.title = "Devices"
    sheet["C1"], sheet["D1"], sheet["E1"] = "serial", "name", "note"
    sheet["C2"], sheet["D2"], sheet["E2"] = "S1", "n", "x"
    sheet.column_dimensions.group("A", "B", hidden=True)  # blank, left of the table
    sheet.column_dimensions.group("E", "XFD", hidden=True)
    _, table = opened(workbook, tmp_path / "site.xlsx")
    assert table.columns == ["C", "D", "E"]
    assert table.hidden_columns == ["E"]


def test_hidden_column_is_listed_when_it_holds_something(tmp_path: Path) -> None:
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    assert sheet is not None
    sheet.title = "Devices"
    sheet["A1"], sheet["D1"], sheet["E1"] = "serial", "name", "note"
    sheet["A2"], sheet["C3"], sheet["D2"], sheet["A3"] = "S1", "stray", "n", "S2"
    sheet["B2"] = "  "  # blank: a spacer column
    for letter in "BCDE":  # C: data without a header; E: a header without data
        sheet.column_dimensions[letter].hidden = True
    _, table = opened(workbook, tmp_path / "site.xlsx")
    assert table.columns == ["A", "B", "C", "D", "E"]
    assert table.hidden_columns == ["C", "D", "E"]


# --- xlsx: tabs ----------------------------------------------------------------------


def test_hidden_and_very_hidden_tabs(tmp_path: Path) -> None:
    workbook = devices(rows=1)
    for title, state in (("Lists", "hidden"), ("Users", "visible"), ("Secret", "veryHidden")):
        sheet = workbook.create_sheet(title)
        sheet.sheet_state = state
        sheet.append(["email"])
        sheet.append([f"{title}@example.org"])
    path = tmp_path / "site.xlsx"
    workbook.save(path)
    book = open_workbook(path)
    assert book.tab_names == ["Devices", "Lists", "Users", "Secret"]
    assert book.hidden_tabs == ["Lists", "Secret"]
    assert book.very_hidden_tabs == ["Secret"]
    # A hidden tab is still found and read.
    assert book.find_tab("secret") == "Secret"
    assert book.table("Secret").rows == [["Secret@example.org"]]


def test_hidden_rows_belong_to_their_own_tab(tmp_path: Path) -> None:
    workbook = devices(rows=3)
    other = workbook.create_sheet("Users")
    other.append(["email"])
    for number in range(2, 6):
        other.append([f"u{number}@example.org"])
    other.row_dimensions[4].hidden = True
    other.column_dimensions["A"].hidden = True
    path = tmp_path / "site.xlsm"
    workbook.save(path)
    book = open_workbook(path)
    devices_table, users = book.table("Devices"), book.table("Users")
    assert (devices_table.hidden_rows, devices_table.hidden_columns) == ([], [])
    assert (users.hidden_rows, users.hidden_columns) == ([4], ["A"])


def test_nothing_hidden_gives_empty_lists(tmp_path: Path) -> None:
    workbook = devices()
    workbook.create_sheet("Users").append(["email"])
    book, table = opened(workbook, tmp_path / "site.xlsx")
    assert (book.hidden_tabs, book.very_hidden_tabs) == ([], [])
    assert (table.hidden_rows, table.hidden_columns) == ([], [])
    assert book.table("Users").hidden_rows == []


# --- xlsx as other producers write it ----------------------------------------------------


def test_hidden_text_in_a_cell_is_not_a_hidden_row(tmp_path: Path) -> None:
    path = handmade_xlsx(
        tmp_path / "site.xlsx",
        '<sheetFormatPr defaultRowHeight="15"/>'
        "<cols><col min='2' max='2' width='0' hidden='true'/><col min='3' max='3' hidden='0'/></cols>"
        "<sheetData>"
        + inline_row(1, ["serial", "note", "x"])
        + inline_row(2, ["S1", 'my row hidden="1" here', "y"], ' spans="1:3"')
        + inline_row(3, ["S2", "", "z"], ' hidden=\'true\' customHeight="1" ht="0"')
        + inline_row(4, ["S3", "", "w"], ' hidden="0"')
        + "</sheetData>",
    )
    table = open_workbook(path).table("Devices")
    assert table.rows[0][1] == 'my row hidden="1" here'
    assert table.hidden_rows == [3]
    assert table.hidden_columns == ["B"]


def test_rows_without_numbers_are_counted(tmp_path: Path) -> None:
    """r="" is optional on <row>: a row without one follows the one before."""
    path = handmade_xlsx(
        tmp_path / "site.xlsx",
        "<sheetData>"
        + inline_row(None, ["serial"])
        + inline_row(None, ["S1"], ' hidden="1"')
        + inline_row(5, ["S2"])
        + inline_row(None, ["S3"], ' hidden="1"')
        + "</sheetData>",
    )
    table = open_workbook(path).table("Devices")
    assert table.row_numbers == [2, 5, 6]
    assert table.hidden_rows == [2, 6]


def test_hidden_rows_across_scan_chunks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import provisioner.sheets as sheets

    monkeypatch.setattr(sheets, "_CHUNK", 256)  # many chunks, cut between rows
    workbook = devices(rows=60, columns="AB")
    sheet = workbook.active
    assert sheet is not None
    hidden = list(range(5, 62, 7))
    for number in hidden:
        sheet.row_dimensions[number].hidden = True
    sheet.column_dimensions["B"].hidden = True
    _, table = opened(workbook, tmp_path / "site.xlsx")
    assert table.hidden_rows == hidden
    assert table.hidden_columns == ["B"]


# --- ods -------------------------------------------------------------------------------


def test_ods_collapsed_and_filtered_rows_and_columns(tmp_path: Path) -> None:
    hide = ' table:visibility="collapse"'
    path = handmade_ods(
        tmp_path / "site.ods",
        '<table:table table:name="Devices">'
        "<table:table-column/>"
        f'<table:table-column table:number-columns-repeated="2"{hide}/>'
        '<table:table-column table:number-columns-repeated="1000"/>'
        f'<table:table-column table:number-columns-repeated="15000"{hide}/>'
        "<table:table-header-rows>"
        + ods_row(["serial", "name", "note", "x"])
        + "</table:table-header-rows>"
        + ods_row(["S1", "a", "b", "c"])
        + '<table:table-row table:number-rows-repeated="2"><table:table-cell/></table:table-row>'
        + ods_row(["S2", "a", "b", "c"], hide)
        + ods_row(["S3", "a", "b", "c"], ' table:visibility="filter"')
        + "<table:table-row-group>"
        + ods_row(["S4", "", "", ""], hide)
        + "</table:table-row-group>"
        + '<table:table-row table:number-rows-repeated="1048000" table:visibility="collapse">'
        "<table:table-cell/></table:table-row>"
        "</table:table>"
        '<table:table table:name="Users">'
        + ods_row(["email"], hide)
        + ods_row(["u@x"])
        + "</table:table>",
    )
    book = open_workbook(path)
    table = book.table("Devices")
    assert table.row_numbers == [2, 5, 6, 7]
    assert table.rows[1] == ["S2", "a", "b", "c"]
    assert table.hidden_rows == [5, 6, 7]
    assert table.hidden_columns == ["B", "C"]
    users = book.table("Users")
    assert (users.hidden_rows, users.hidden_columns) == ([1], [])


def test_ods_hidden_tab_and_nothing_hidden(tmp_path: Path) -> None:
    path = handmade_ods(
        tmp_path / "site.ods",
        '<table:table table:name="Devices">'
        + ods_row(["serial"])
        + ods_row(["S1"])
        + "</table:table>"
        '<table:table table:name="Lists" table:style-name="ta2">'
        + ods_row(["x"])
        + "</table:table>",
        styles='<style:style style:name="ta2" style:family="table">'
        '<style:table-properties table:display="false"/></style:style>',
    )
    book = open_workbook(path)
    assert book.hidden_tabs == ["Lists"]
    assert book.very_hidden_tabs == []
    table = book.table("Devices")
    assert (table.hidden_rows, table.hidden_columns) == ([], [])


# --- csv -------------------------------------------------------------------------------


def test_csv_has_nothing_hidden(tmp_path: Path) -> None:
    path = tmp_path / "site.csv"
    path.write_bytes(b"serial;name\nS1;n\n")
    book = open_workbook(path)
    table = book.table("site.csv")
    assert (book.hidden_tabs, book.very_hidden_tabs) == ([], [])
    assert (table.hidden_rows, table.hidden_columns) == ([], [])


@pytest.mark.parametrize("quoted", [False, True])
def test_csv_cell_of_200_kib_is_read_intact(tmp_path: Path, quoted: bool) -> None:
    big = "".join(chr(0x41 + i % 26) for i in range(200 * 1024 - 1)) + "Ä"
    cell = f'"{big}\n""end"""' if quoted else big
    path = tmp_path / "site.csv"
    path.write_text(f"serial;note;name\nS1;{cell};after\nS2;small;x\n", encoding="utf-8")
    limit = csv.field_size_limit()
    table = open_workbook(path).table("site.csv")
    assert table.rows[0][1] == (f'{big}\n"end"' if quoted else big)
    assert table.rows[0][2] == "after"
    assert table.rows[1] == ["S2", "small", "x"]
    assert table.row_numbers == [2, 3]
    # The csv module's limit is one for the whole process: it is put back.
    assert csv.field_size_limit() == limit
