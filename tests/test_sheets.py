"""Reading sheets as the user sees them: formats, encodings, damage, broken files."""

from __future__ import annotations

import datetime
import re
import zipfile
from pathlib import Path

import openpyxl
import pytest

from provisioner.sheets import SheetError, Table, excel_general, open_workbook

DATA = Path(__file__).parent / "data"


def read(path: Path, tab: str | None = None) -> Table:
    workbook = open_workbook(path)
    return workbook.table(tab or workbook.tab_names[0])


def write_xlsx(path: Path, cells: dict[str, object], title: str = "Devices") -> Path:
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    assert sheet is not None
    sheet.title = title
    for ref, value in cells.items():
        sheet[ref] = value
    workbook.save(path)
    return path


def handmade_xlsx(path: Path, sheet_data: str) -> Path:
    """A minimal xlsx written by hand: lets a test hold cached formula values."""
    main = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
    rel = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
    package = "http://schemas.openxmlformats.org/package/2006"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(
            "[Content_Types].xml",
            f'<Types xmlns="{package}/content-types">'
            '<Default Extension="rels" '
            'ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
            '<Default Extension="xml" ContentType="application/xml"/>'
            '<Override PartName="/xl/workbook.xml" ContentType="application/'
            'vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/>'
            '<Override PartName="/xl/worksheets/sheet1.xml" ContentType="application/'
            'vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/>'
            "</Types>",
        )
        archive.writestr(
            "_rels/.rels",
            f'<Relationships xmlns="{package}/relationships">'
            f'<Relationship Id="rId1" Type="{rel}/officeDocument" Target="xl/workbook.xml"/>'
            "</Relationships>",
        )
        archive.writestr(
            "xl/workbook.xml",
            f'<workbook xmlns="{main}" xmlns:r="{rel}"><sheets>'
            '<sheet name="Devices" sheetId="1" r:id="rId7"/></sheets></workbook>',
        )
        archive.writestr(
            "xl/_rels/workbook.xml.rels",
            f'<Relationships xmlns="{package}/relationships">'
            f'<Relationship Id="rId7" Type="{rel}/worksheet" Target="worksheets/sheet1.xml"/>'
            "</Relationships>",
        )
        archive.writestr(
            "xl/worksheets/sheet1.xml",
            f'<worksheet xmlns="{main}"><sheetData>{sheet_data}</sheetData></worksheet>',
        )
    return path


def handmade_ods(path: Path, rows: list[list[str]]) -> Path:
    """A minimal valid ODS: mimetype stored first, content.xml, manifest."""
    body = "".join(
        "<table:table-row>"
        + "".join(
            '<table:table-cell office:value-type="string">'
            f"<text:p>{value}</text:p></table:table-cell>"
            for value in row
        )
        + "</table:table-row>"
        for row in rows
    )
    return ods_of_rows(path, body)


def ods_of_rows(path: Path, body: str) -> Path:
    """A minimal valid ODS of one tab, Devices, whose rows are ``body`` as content.xml
    holds them."""
    office = "urn:oasis:names:tc:opendocument:xmlns:office:1.0"
    table = "urn:oasis:names:tc:opendocument:xmlns:table:1.0"
    text = "urn:oasis:names:tc:opendocument:xmlns:text:1.0"
    content = (
        f'<office:document-content xmlns:office="{office}" xmlns:table="{table}" '
        f'xmlns:text="{text}" office:version="1.2"><office:body><office:spreadsheet>'
        f'<table:table table:name="Devices">{body}</table:table>'
        "</office:spreadsheet></office:body></office:document-content>"
    )
    manifest = (
        '<manifest:manifest xmlns:manifest="urn:oasis:names:tc:opendocument:xmlns:manifest:1.0" '
        'manifest:version="1.2">'
        '<manifest:file-entry manifest:full-path="/" '
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


# --- CSV ---------------------------------------------------------------------------


@pytest.mark.parametrize("delimiter", [",", ";"])
def test_csv_delimiter_is_sniffed_from_the_header(tmp_path: Path, delimiter: str) -> None:
    path = tmp_path / "site.csv"
    other = ";" if delimiter == "," else ","
    path.write_bytes(
        f'serial{delimiter}name{delimiter}note\nA1{delimiter}"x{delimiter}y"{delimiter}a{other}b\n'.encode()
    )
    workbook = open_workbook(path)
    table = workbook.table("site.csv")
    assert (workbook.format, workbook.delimiter, workbook.encoding) == ("csv", delimiter, "utf-8")
    assert workbook.tab_names == ["site.csv"]
    assert table.sheet == "site.csv"
    assert table.headers == ["serial", "name", "note"]
    assert table.rows == [["A1", f"x{delimiter}y", f"a{other}b"]]
    assert table.columns == ["A", "B", "C"]
    assert table.stored == {}


def test_csv_delimiter_inside_quoted_header_does_not_count(tmp_path: Path) -> None:
    path = tmp_path / "site.csv"
    path.write_bytes(b'"serial;number","name;x",z\n1,2,3\n')
    workbook = open_workbook(path)
    assert workbook.delimiter == ","
    assert workbook.table("site.csv").headers == ["serial;number", "name;x", "z"]


def test_csv_utf8_with_bom(tmp_path: Path) -> None:
    path = tmp_path / "site.csv"
    path.write_bytes("\ufeffserial;Beschreibung\nA1;Zähler Süd\n".encode())
    workbook = open_workbook(path)
    table = workbook.table("site.csv")
    assert workbook.encoding == "utf-8-sig"
    assert table.headers == ["serial", "Beschreibung"]
    assert table.rows == [["A1", "Zähler Süd"]]


def test_csv_cp1252_umlauts(tmp_path: Path) -> None:
    path = tmp_path / "site.csv"
    path.write_bytes("serial;Beschreibung\nA1;Wärmezähler Öl Übergabe Straße\n".encode("cp1252"))
    workbook = open_workbook(path)
    assert workbook.encoding == "cp1252"
    assert workbook.guessed_encoding == "Windows-1252 (Western European)"
    assert workbook.table("site.csv").rows == [["A1", "Wärmezähler Öl Übergabe Straße"]]


def test_csv_neither_utf8_nor_cp1252(tmp_path: Path) -> None:
    path = tmp_path / "site.csv"
    path.write_bytes(b"serial;name\nA1;\x81\x8d\n")
    with pytest.raises(SheetError, match="save the file as CSV UTF-8"):
        open_workbook(path)


# Short texts in the code pages a CSV is saved in, and how each reads: each word of them
# tells the encoding (a German one always: ä, ö, ü, ß, € are the same in every Western
# code page, and read in any other make a word no language writes).
READ_RIGHT = [
    ("cp1252", "Gerät;Straße;Größe\nWärmezähler;12 m²;20°C\nÖltank;Preis 12 €;Müller\n"),
    ("cp1252", "serial;name\nA1;Müller\n"),
    ("cp1252", "serial;Ort\nA1;MÜNCHEN\nA2;KÖLN\n"),
    ("iso8859_7", "serial;name\nA1;Λεωνίδας\nA2;Νίκος\nA3;Γιώργος Παπαδόπουλος\n"),
    ("iso8859_7", "serial;Όνομα\nA1;Άννα Παπαδοπούλου\nA2;Ελένη\n"),
    ("cp1251", "serial;имя\nA1;Иван Петров\n"),
    ("cp1250", "serial;nazwa\nA1;Zażółć gęślą jaźń\n"),
    ("gb18030", "serial;名称\nA1;北京市朝阳区\nA2;张伟\n"),
]


@pytest.mark.parametrize(("encoding", "text"), READ_RIGHT)
def test_csv_encoding_is_detected(tmp_path: Path, encoding: str, text: str) -> None:
    path = tmp_path / "site.csv"
    path.write_bytes(text.encode(encoding))
    workbook = open_workbook(path)
    table = workbook.table("site.csv")
    assert [table.headers, *table.rows] == [line.split(";") for line in text.splitlines()]
    assert workbook.guessed_encoding is not None


@pytest.mark.parametrize(
    ("encoding", "text"),
    [
        ("iso8859_7", "serial;name\nA1;Λεωνίδας\n"),  # Greek, or Cyrillic: Ыхљэпфсђ
        ("cp1252", "serial;name\nA1;é\n"),  # é, й, ι
        ("cp1254", "serial;ad\nA1;Şükrü Güneş\n"),  # Turkish, or Þükrü Güneþ
    ],
)
def test_csv_encoding_that_cannot_be_told_is_an_error(
    tmp_path: Path, encoding: str, text: str
) -> None:
    path = tmp_path / "site.csv"
    path.write_bytes(text.encode(encoding))
    with pytest.raises(SheetError, match="its encoding cannot be told for sure .*CSV UTF-8"):
        open_workbook(path)


def test_csv_byte_beyond_the_detected_encoding(tmp_path: Path) -> None:
    """The detector reads the first lines beyond ASCII; a byte further down that the
    encoding found has no letter for is an error naming its line."""
    path = tmp_path / "site.csv"
    filler = "".join(f"A{n};Wärmezähler Straße\n" for n in range(2000)).encode("cp1252")
    path.write_bytes(b"serial;name\n" + filler + b"B1;\x81\n")
    with pytest.raises(SheetError, match="line 2,002 cannot be read as Windows-1252"):
        open_workbook(path)


def test_csv_quoted_line_break_and_blank_rows_keep_excel_row_numbers(tmp_path: Path) -> None:
    path = tmp_path / "site.csv"
    path.write_bytes(
        b'\r\n  \r\nserial;note\r\nA1;"two\r\nlines"\r\n\r\n;  ;\r\nA2;x\r\nA3;"3\nlines\n"\r\n'
    )
    table = read(path)
    assert table.header_row == 3
    assert table.row_numbers == [4, 7, 8]
    assert table.rows == [["A1", "two\nlines"], ["A2", "x"], ["A3", "3\nlines\n"]]
    assert table.cell(1, 1) == "B7"


def test_csv_ragged_rows_are_aligned_to_the_header(tmp_path: Path) -> None:
    path = tmp_path / "site.csv"
    path.write_bytes(b"serial,name,,\nA1\nA2,n,,extra\nA3,m,,\n")
    table = read(path)
    assert table.headers == ["serial", "name", "", ""]
    assert table.rows == [["A1", "", "", ""], ["A2", "n", "", "extra"], ["A3", "m", "", ""]]


def test_csv_keeps_text_as_typed(tmp_path: Path) -> None:
    path = tmp_path / "site.csv"
    path.write_bytes(b"serial;imei;addr\n  0042 ;3.52656E+14;1337.0\n")
    table = read(path)
    assert table.rows == [["  0042 ", "3.52656E+14", "1337.0"]]
    assert table.stored == {}


# --- xlsx: values as the user sees them ----------------------------------------------


def test_xlsx_values_rendered_like_excel_and_stored_values_kept(tmp_path: Path) -> None:
    path = write_xlsx(
        tmp_path / "site.xlsx",
        {
            "A1": "imei",
            "B1": "addr",
            "C1": "lat",
            "D1": "installed",
            "E1": "at",
            "F1": "active",
            "G1": "name",
            "A2": 352656100677000,
            "B2": 1337.0,
            "C2": 53.55,
            "D2": datetime.date(2024, 1, 12),
            "E2": datetime.datetime(2024, 1, 12, 8, 30),
            "F2": True,
            "G2": "  Keller  links ",
        },
    )
    table = read(path)
    assert table.rows == [
        [
            "3.52656E+14",
            "1337",
            "53.55",
            "2024-01-12",
            "2024-01-12 08:30:00",
            "TRUE",
            "  Keller  links ",
        ]
    ]
    assert table.stored == {
        (0, 0): ("number", "352656100677000"),
        (0, 1): ("number", "1337"),
        (0, 2): ("number", "53.55"),
        (0, 3): ("date", "2024-01-12"),
        (0, 4): ("date", "2024-01-12 08:30:00"),
        (0, 5): ("bool", "TRUE"),
    }


def test_times_and_durations_keep_their_fraction(tmp_path: Path) -> None:
    path = write_xlsx(
        tmp_path / "site.xlsx",
        {
            "A1": "h",
            "A2": datetime.timedelta(hours=10, minutes=10, seconds=10.1),
            "B2": datetime.timedelta(days=1, hours=2),
            "C2": datetime.timedelta(seconds=-3.25),
            "D2": datetime.time(8, 30, 5, 120000),
            "E2": datetime.time(8, 30),
            "F2": datetime.datetime(2024, 1, 12, 8, 30, 0, 500000),
        },
    )
    shown = ["10:10:10.1", "26:00:00", "-0:00:03.25", "08:30:05.12", "08:30:00"]
    assert read(path).rows == [[*shown, "2024-01-12 08:30:00.5"]]


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        (0.0, "0"),
        (1337.0, "1337"),
        (-42.0, "-42"),
        (99999999999.0, "99999999999"),
        (1e11, "1E+11"),
        (352656100677000.0, "3.52656E+14"),
        (353000000000001.0, "3.53E+14"),
        (-352656100677000.0, "-3.52656E+14"),
        (53.55, "53.55"),
        (0.1 + 0.2, "0.3"),
        (1 / 3, "0.333333333"),
        (123456.789012345, "123456.789"),
        (0.0025, "0.0025"),
        (0.00001, "0.00001"),
        (1.23456789e-5, "1.23457E-05"),
        (1.234e-7, "1.234E-07"),
    ],
)
def test_excel_general_format(value: float, shown: str) -> None:
    assert excel_general(value) == shown


def test_header_is_first_non_blank_row_and_data_may_start_at_column_c(tmp_path: Path) -> None:
    path = write_xlsx(
        tmp_path / "site.xlsx",
        {
            "C3": "Site Hafen",  # a title row is the header: the record stage reports it
            "C5": "serial",
            "D5": "name",
            "C6": "A1",
            "D6": "n1",
            "C8": " ",
            "C9": "A2",
            "D9": 7,
        },
    )
    table = read(path)
    assert table.header_row == 3
    assert table.headers == ["Site Hafen", ""]
    assert table.columns == ["C", "D"]
    assert table.row_numbers == [5, 6, 9]
    assert table.rows == [["serial", "name"], ["A1", "n1"], ["A2", "7"]]
    assert table.stored == {(2, 1): ("number", "7")}
    assert table.cell(2, 1) == "D9"


def test_leading_blank_rows_skipped_and_trailing_empty_columns_dropped(tmp_path: Path) -> None:
    path = write_xlsx(
        tmp_path / "site.xlsx",
        {"B3": "serial", "C3": " Name ", "E3": "", "B4": "A1", "D4": "orphan", "F4": " "},
    )
    table = read(path)
    assert table.header_row == 3
    assert table.headers == ["serial", "Name", ""]
    assert table.columns == ["B", "C", "D"]
    assert table.rows == [["A1", "", "orphan"]]


def test_header_only_is_an_empty_table(tmp_path: Path) -> None:
    table = read(write_xlsx(tmp_path / "site.xlsx", {"A1": "serial", "B1": "name"}))
    assert (table.headers, table.rows, table.row_numbers) == (["serial", "name"], [], [])


def test_formula_without_cached_value_is_marked_at_its_cell(tmp_path: Path) -> None:
    path = write_xlsx(
        tmp_path / "site.xlsx",
        {"A1": "serial", "C1": "addr", "A2": "S1", "A3": "S2", "C3": "=A2*2", "E5": '=A2&"x"'},
    )
    table = read(path)
    assert table.headers == ["serial", "", "addr", "", ""]
    assert table.row_numbers == [2, 3, 5]
    assert table.rows[1] == ["S2", "", "", "", ""]
    assert table.stored == {
        (1, 2): ("formula", "=A2*2"),
        (2, 4): ("formula", '=A2&"x"'),
    }
    assert table.cell(1, 2) == "C3"


def test_formula_with_cached_value_reads_as_its_value(tmp_path: Path) -> None:
    path = handmade_xlsx(
        tmp_path / "site.xlsx",
        '<row r="1"><c r="A1" t="inlineStr"><is><t>serial</t></is></c>'
        '<c r="B1" t="inlineStr"><is><t>addr</t></is></c>'
        '<c r="C1" t="inlineStr"><is><t>name</t></is></c></row>'
        '<row r="2"><c r="A2"><v>2</v></c><c r="B2"><f>A2*2</f><v>4</v></c>'
        '<c r="C2" t="str"><f>"M-"&amp;A2</f><v>M-2</v></c></row>'
        '<row r="3"><c r="A3" t="e"><f>1/0</f><v>#DIV/0!</v></c>'
        '<c r="B3" t="e"><v>#REF!</v></c><c r="C3" t="str"><f>""</f><v></v></c></row>',
    )
    table = read(path)
    assert table.rows == [["2", "4", "M-2"], ["#DIV/0!", "#REF!", ""]]
    assert table.stored == {
        (0, 0): ("number", "2"),
        (0, 1): ("number", "4"),
        (1, 0): ("error", "#DIV/0!"),
        (1, 1): ("error", "#REF!"),
    }


def test_error_cell_from_openpyxl(tmp_path: Path) -> None:
    table = read(write_xlsx(tmp_path / "site.xlsx", {"A1": "serial", "A2": "#N/A"}))
    assert table.rows == [["#N/A"]]
    assert table.stored == {(0, 0): ("error", "#N/A")}


def test_xlsm_and_several_tabs(tmp_path: Path) -> None:
    workbook = openpyxl.Workbook()
    devices = workbook.active
    assert devices is not None
    devices.title = "Devices"
    devices.append(["serial"])
    devices.append(["A1"])
    users = workbook.create_sheet(" user S")
    users.append(["email"])
    users.append(["a@example.org"])
    path = tmp_path / "site.xlsm"
    workbook.save(path)
    opened = open_workbook(path)
    assert opened.format == "xlsx"
    assert opened.tab_names == ["Devices", " user S"]
    assert opened.find_tab("users") == " user S"
    assert opened.find_tab("DEVICES") == "Devices"
    assert opened.find_tab("Downlinks") is None
    assert opened.table(" user S").rows == [["a@example.org"]]
    assert opened.table("Devices") is opened.table("Devices")
    with pytest.raises(SheetError, match='no tab "Downlinks"'):
        opened.table("Downlinks")


# --- ods and other producers ----------------------------------------------------


def test_handmade_ods(tmp_path: Path) -> None:
    path = handmade_ods(tmp_path / "site.ods", [["serial", "name"], [], ["A1", "Zähler"]])
    workbook = open_workbook(path)
    assert (workbook.format, workbook.tab_names) == ("ods", ["Devices"])
    table = workbook.table("Devices")
    assert table.headers == ["serial", "name"]
    assert table.row_numbers == [3]
    assert table.rows == [["A1", "Zähler"]]


@pytest.mark.parametrize("suffix", [".xlsx", ".ods"])
def test_libreoffice_files_read_like_the_csv_they_came_from(suffix: str) -> None:
    table = read(DATA / f"libreoffice-site{suffix}")
    text = read(DATA / "libreoffice-site.csv")
    assert (
        table.headers
        == text.headers
        == [
            "serial",
            "name",
            "imei",
            "deviceTypeId",
            "description",
            "installed",
        ]
    )
    assert table.row_numbers == text.row_numbers == [2, 3, 6]
    assert table.rows == [
        ["42", "Zähler Keller", "3.52656E+14", "12", "Wärmemenge, Süd", "2024-01-12"],
        ["SN-2", "Gateway Dach", "", "7", "zwei\nZeilen", "2024-02-01"],
        ["SN-3", "Straße 5", "3.53E+14", "12", "ÄÖÜ äöü ß", "TRUE"],
    ]
    assert text.rows[0][:3] == ["0042", "Zähler Keller", "352656100677000"]
    assert table.stored[(0, 0)] == ("number", "42")
    assert table.stored[(0, 2)] == ("number", "352656100677000")
    assert table.stored[(2, 5)] == ("bool", "TRUE")
    assert table.stored[(1, 5)] == ("date", "2024-02-01")


# --- files that cannot be read as a sheet ----------------------------------------


def test_merged_header_cells(tmp_path: Path) -> None:
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    assert sheet is not None
    sheet.title = "Devices"
    sheet["A1"] = "Hafen"  # a merged title above the header row is fine
    sheet.merge_cells("A1:C1")
    sheet["A2"] = "serial"
    sheet["C2"] = "name"
    sheet.merge_cells("A2:B2")
    path = tmp_path / "site.xlsx"
    workbook.save(path)
    with pytest.raises(SheetError, match=r"Devices!A1:C1 .*unmerge"):
        read(path)
    sheet.unmerge_cells("A1:C1")
    sheet["A1"] = None
    workbook.save(path)
    with pytest.raises(SheetError, match=r"Devices!A2:B2 .*unmerge"):
        read(path)


def test_duplicate_headers_name_both_cells(tmp_path: Path) -> None:
    path = write_xlsx(tmp_path / "site.xlsx", {"B1": " Serial ", "C1": "name", "F1": "serial"})
    with pytest.raises(SheetError) as caught:
        read(path)
    assert 'Devices!B1 and Devices!F1 are both "Serial": rename or delete one' in str(caught.value)


def test_duplicate_headers_in_csv(tmp_path: Path) -> None:
    path = tmp_path / "site.csv"
    path.write_bytes(b"serial;Device Type Id;deviceTypeId\n")
    with pytest.raises(SheetError, match=r"site.csv!B1 and site.csv!C1 are both"):
        read(path)


@pytest.mark.parametrize("suffix", [".xlsx", ".csv"])
def test_empty_sheet(tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"site{suffix}"
    if suffix == ".csv":
        path.write_bytes(b"\r\n ; \r\n")
    else:
        write_xlsx(path, {"B2": "  "})
    with pytest.raises(SheetError, match="is empty"):
        read(path)


def test_xlsx_that_is_really_csv(tmp_path: Path) -> None:
    path = tmp_path / "site.xlsx"
    path.write_bytes(b"serial;name\nA1;x\n")
    with pytest.raises(SheetError, match="rename it to .csv"):
        open_workbook(path)


def test_csv_that_is_really_xlsx(tmp_path: Path) -> None:
    path = write_xlsx(tmp_path / "site.xlsx", {"A1": "serial"})
    path = path.rename(tmp_path / "site.csv")
    with pytest.raises(
        SheetError, match="this is an Excel workbook, not a CSV: rename it to .xlsx"
    ):
        open_workbook(path)


def test_ods_that_is_really_xlsx_and_the_other_way(tmp_path: Path) -> None:
    path = write_xlsx(tmp_path / "a.xlsx", {"A1": "serial"}).rename(tmp_path / "a.ods")
    with pytest.raises(SheetError, match="rename it to .xlsx"):
        open_workbook(path)
    path = handmade_ods(tmp_path / "b.ods", [["serial"]]).rename(tmp_path / "b.xlsx")
    with pytest.raises(SheetError, match="rename it to .ods"):
        open_workbook(path)


OLE = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 504


def ole_stream(name: str) -> bytes:
    """A directory entry's name as an OLE2 file holds it: UTF-16, ended by a NUL."""
    return name.encode("utf-16-le") + b"\x00\x00"


@pytest.mark.parametrize(
    ("streams", "said"),
    [
        (
            ole_stream("Workbook"),
            "this is an old Excel workbook (.xls), not a .xlsx workbook: "
            "open it in Excel or LibreOffice and save it as .xlsx",
        ),
        (
            ole_stream("EncryptionInfo") + ole_stream("EncryptedPackage"),
            "this is a workbook saved with a password, not a .xlsx workbook: open it in Excel, "
            "take the password off",
        ),
        (b"", "this is an old Office file (.xls, .doc) or a workbook saved with a password"),
    ],
    ids=["xls", "password", "unknown"],
)
def test_ole_files_are_told_apart_by_their_streams(
    tmp_path: Path, streams: bytes, said: str
) -> None:
    path = tmp_path / "site.xlsx"
    path.write_bytes(OLE + streams)
    with pytest.raises(SheetError, match=re.escape(said)):
        open_workbook(path)


def test_utf16_without_byte_order_mark_and_binary_csv(tmp_path: Path) -> None:
    path = tmp_path / "site.csv"
    path.write_bytes("serial;name\nA1;x\n".encode("utf-16-le"))
    with pytest.raises(SheetError, match="UTF-16 text without its byte-order mark.*CSV UTF-8"):
        open_workbook(path)
    path.write_bytes(b"serial;name\nA1;\x00\x01\x02\xff\xfe binary\n")
    with pytest.raises(SheetError, match="binary data \\(NUL bytes\\), not the text of a CSV"):
        open_workbook(path)


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-be"])
def test_csv_utf16_with_byte_order_mark(tmp_path: Path, encoding: str) -> None:
    path = tmp_path / "site.csv"
    text = "serial;Beschreibung\nA1;Wärmezähler Λ\n"
    bom = "\ufeff" if encoding == "utf-16-be" else ""  # Python's utf-16 writes its own
    path.write_bytes((bom + text).encode(encoding))
    workbook = open_workbook(path)
    assert (workbook.encoding, workbook.guessed_encoding, workbook.delimiter) == (
        "utf-16",
        None,
        ";",
    )
    assert workbook.table("site.csv").rows == [["A1", "Wärmezähler Λ"]]


def test_unknown_suffix_and_missing_file(tmp_path: Path) -> None:
    with pytest.raises(SheetError, match=r"\.xlsx, \.xlsm, \.ods or \.csv"):
        open_workbook(tmp_path / "site.xls")
    with pytest.raises(SheetError, match="file not found"):
        open_workbook(tmp_path / "missing.xlsx")
