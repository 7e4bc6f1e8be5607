"""Every file read right, as a person sees it through `provisioner validate` (issue 26): a
CSV in another encoding than UTF-8, a file that is something else than its name says,
times and durations with their fraction, long lists in messages cut with "and N more"."""

from __future__ import annotations

import gzip
import json
import zipfile
from datetime import time, timedelta
from pathlib import Path

import openpyxl
import pytest
from click.testing import CliRunner
from test_sheets import ods_of_rows

from provisioner.cli import main
from provisioner.text import listed

GREEK = [("Λεωνίδας", "0004A30B001C0000"), ("Άννα Παπαδοπούλου", "0004A30B001C0001")]
GERMAN = [("Wärmezähler Öl", "0004A30B001C0002"), ("Übergabe Straße 12 €", "0004A30B001C0003")]


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args))
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    return result.exit_code, result.output


def site_csv(path: Path, rows: list[tuple[str, str]], encoding: str) -> Path:
    lines = ["serial;name;addr", *(f"A{n};{name};{addr}" for n, (name, addr) in enumerate(rows))]
    path.write_bytes(("\r\n".join(lines) + "\r\n").encode(encoding))
    return path


def names_in_report(report: Path) -> list[str]:
    """The name column of the sheet's copy in an xlsx report, as Excel shows it."""
    sheet = openpyxl.load_workbook(report).worksheets[0]
    return [str(row[1]) for row in sheet.iter_rows(min_row=2, values_only=True)]


@pytest.mark.parametrize(
    ("rows", "encoding", "named", "example"),
    [
        (GREEK, "iso8859_7", "ISO-8859-7 (Greek)", "B2 reads 'Λεωνίδας'"),
        (GERMAN, "cp1252", "Windows-1252 (Western European)", "B2 reads 'Wärmezähler Öl'"),
    ],
    ids=["greek", "german"],
)
def test_csv_not_utf8_is_read_in_its_encoding_with_one_warning(
    tmp_path: Path, rows: list[tuple[str, str]], encoding: str, named: str, example: str
) -> None:
    path = site_csv(tmp_path / "site.csv", rows, encoding)
    code, out = run("validate", str(path), "--report", str(tmp_path / "r.xlsx"))
    assert code == 0, out
    warnings = [line for line in out.splitlines() if line.startswith("warning:")]
    assert warnings == [
        f"warning: site.csv: the file is not UTF-8: read as {named}; {example}. If it should "
        "read otherwise, save the file as CSV UTF-8 (Excel: File > Save As > CSV UTF-8)"
    ], out
    assert names_in_report(tmp_path / "r.xlsx") == [name for name, _ in rows]


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "utf-16"])
def test_csv_in_unicode_reads_without_a_word(tmp_path: Path, encoding: str) -> None:
    path = site_csv(tmp_path / "site.csv", GREEK + GERMAN[:1], encoding)
    code, out = run("validate", str(path), "--report", str(tmp_path / "r.xlsx"))
    assert code == 0, out
    assert "warning" not in out, out
    assert names_in_report(tmp_path / "r.xlsx") == [GREEK[0][0], GREEK[1][0], GERMAN[0][0]]


def test_excels_unicode_text_renamed_csv_reads_its_tabs(tmp_path: Path) -> None:
    # Excel's "Unicode Text" is UTF-16 with tabs; renamed .csv it is read by its columns,
    # with a comma and a semicolon in its cells, not as one column named "serial\tname\taddr".
    path = tmp_path / "site.csv"
    lines = ["serial\tname\taddr", "A0\tHaus 3; Keller, links\t0004A30B001C0000"]
    path.write_bytes(("\r\n".join(lines) + "\r\n").encode("utf-16"))
    code, out = run(
        "validate",
        str(path),
        "--report",
        str(tmp_path / "r.xlsx"),
        "--report",
        str(tmp_path / "r.csv"),
    )
    assert code == 0, out
    assert "warning" not in out, out
    assert names_in_report(tmp_path / "r.xlsx") == ["Haus 3; Keller, links"]
    # The CSV report is UTF-8, cut by ";" as German Excel opens it, not by tabs.
    header = (tmp_path / "r.csv").read_text("utf-8-sig").splitlines()[0]
    assert ";" in header and "\t" not in header, header


def test_csv_whose_encoding_cannot_be_told_is_an_error(tmp_path: Path) -> None:
    # One Greek name: Greek, or Cyrillic ("Ыхљэпфсђ"), the bytes alone cannot say.
    path = site_csv(tmp_path / "site.csv", GREEK[:1], "iso8859_7")
    code, out = run("validate", str(path))
    assert code == 2, out
    assert out.startswith(
        "Error: site.csv: the file is not UTF-8, and its encoding cannot be told for sure ("
    ), out
    assert "Greek" in out and "save the file as CSV UTF-8 (Excel: File > Save As > CSV UTF-8" in out


def zip_of(path: Path, name: str, data: bytes) -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr(name, data)
    return path


@pytest.mark.parametrize(
    ("name", "make", "said"),
    [
        (
            "site.csv",
            lambda p: zip_of(p, "site-hh-04.csv", b"serial;addr\n"),
            "this is a zip archive, not a CSV: unpack it and give the sheet inside "
            "(site-hh-04.csv)",
        ),
        (
            "site.csv",
            lambda p: p.write_bytes(gzip.compress(b"serial;addr\nA1;0004A30B001C0000\n")),
            "this is a gzip-compressed file, not a CSV: unpack it",
        ),
        (
            "site.xlsx",
            lambda p: p.write_bytes(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj"),
            "this is a PDF document, not a .xlsx workbook: the tables of a PDF cannot be read",
        ),
        (
            "site.ods",
            lambda p: zip_of(p, "word/document.xml", b"<w:document/>"),
            "this is a Word document, not a .ods workbook: copy its table into a workbook",
        ),
        (
            "site.xlsx",
            lambda p: p.write_bytes(b"<!DOCTYPE html>\n<html><table><tr><td>serial</td></tr>"),
            "this is a web page (HTML), not a .xlsx workbook: some programs write their Excel "
            "export so; open it in Excel or LibreOffice and save it as .xlsx",
        ),
    ],
    ids=["zip-as-csv", "gzip-as-csv", "pdf-as-xlsx", "docx-as-ods", "html-as-xlsx"],
)
def test_a_file_that_is_something_else_is_named_for_what_it_is(
    tmp_path: Path, name: str, make: object, said: str
) -> None:
    path = tmp_path / name
    make(path)  # type: ignore[operator]
    code, out = run("validate", str(path))
    assert code == 2, out
    assert out.startswith(f"Error: {name}: {said}"), out
    assert "UTF-16" not in out and "Traceback" not in out


def test_xlsx_durations_and_times_keep_their_fraction(tmp_path: Path) -> None:
    """Two headers 10:10:10.1 and 10:10:10.2 (durations, as openpyxl writes a timedelta)
    are two columns, not one header twice; a time of day keeps its fraction too."""
    book = openpyxl.Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.append(["serial", "addr", timedelta(hours=10, minutes=10, seconds=10.1)])
    sheet.append(["A1", "0004A30B001C0000", time(8, 30, 5, 250000)])
    sheet["D1"] = timedelta(hours=10, minutes=10, seconds=10.2)
    sheet["E1"] = timedelta(hours=255, minutes=10, seconds=10)
    book.save(tmp_path / "site.xlsx")
    code, out = run("validate", str(tmp_path / "site.xlsx"))
    assert code == 0, out
    for header in ("10:10:10.1", "10:10:10.2", "255:10:10"):
        assert f"column '{header}' is not a field of this template" in out, out
    assert "are both" not in out


def ods_cell(text: str, time_value: str = "") -> str:
    typed = (
        f'office:value-type="time" office:time-value="{time_value}"'
        if time_value
        else ('office:value-type="string"')
    )
    return f"<table:table-cell {typed}><text:p>{text}</text:p></table:table-cell>"


def test_ods_durations_read_as_libreoffice_shows_them(tmp_path: Path) -> None:
    header = "".join(
        [
            ods_cell("serial"),
            ods_cell("addr"),
            ods_cell("255:10:10", "PT255H10M10S"),
            ods_cell("10:10:10.1", "PT10H10M10.1S"),
            ods_cell("-01:00:03", "-PT1H0M3S"),
            ods_cell("PT1H"),  # text that looks like a duration stays text
        ]
    )
    row = ods_cell("A1") + ods_cell("0004A30B001C0000")
    body = f"<table:table-row>{header}</table:table-row><table:table-row>{row}</table:table-row>"
    path = ods_of_rows(tmp_path / "site.ods", body)
    code, out = run("validate", str(path))
    assert code == 0, out
    for header_text in ("255:10:10", "10:10:10.1", "-1:00:03", "PT1H"):
        assert f"column '{header_text}' is not a field of this template" in out, out
    assert "PT255H10M10S" not in out


def test_a_long_list_in_a_message_is_cut_with_and_n_more(tmp_path: Path) -> None:
    """31 cells of one duplicate header: ten named, the rest counted, on one short line."""
    path = tmp_path / "site.csv"
    path.write_bytes(("serial;addr;" + ";".join(["Notiz"] * 31) + "\n").encode())
    code, out = run("validate", str(path))
    assert code == 2, out
    cells = ", ".join(f"site.csv!{letter}1" for letter in "CDEFGHIJKL")
    assert out == f'Error: site.csv: {cells} and 21 more are all "Notiz": rename or delete one\n'


def test_rows_with_one_address_name_ten_others_and_count_the_rest(tmp_path: Path) -> None:
    path = tmp_path / "site.csv"
    rows = "".join(f"A{n};0004A30B001C0000\n" for n in range(2, 32))  # rows 2 to 31
    path.write_bytes(b"serial;addr\n" + rows.encode())
    code, out = run("validate", str(path), "--json")
    assert code == 1, out
    report = json.loads(out[out.index("{") :])
    messages = [p["message"] for row in report["rows"] for p in row["errors"]]
    assert len(messages) == 30
    assert messages[0] == (
        "addr '0004A30B001C0000' is also in row 3, 4, 5, 6, 7, 8, 9, 10, 11, 12 and 19 more"
    )


@pytest.mark.parametrize(
    ("items", "limit", "last", "text"),
    [
        ([], 10, None, ""),
        (["B1"], 10, " and ", "B1"),
        (["B1", "C1", "D1"], 10, " and ", "B1, C1 and D1"),
        (["2", "3", "4"], 10, None, "2, 3, 4"),
        ([str(n) for n in range(2, 33)], 10, None, "2, 3, 4, 5, 6, 7, 8, 9, 10, 11 and 21 more"),
        (["a", "b", "c"], 2, " and ", "a, b and 1 more"),
    ],
)
def test_listed(items: list[str], limit: int, last: str | None, text: str) -> None:
    assert listed(items, limit, last=last) == text
