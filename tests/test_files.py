"""provisioner.files: the one atomic write and the one neutraliser of text cells.

The commands that use them (export, reports, template --out) are tested end to
end in test_export.py, test_reports.py and test_blank_sheet.py; here the pure
rules: every value reads back as it was written, and no written cell is one a
spreadsheet runs.
"""

from __future__ import annotations

import errno
import io
import os
import stat
from pathlib import Path
from typing import IO

import openpyxl
import pytest
from hypothesis import given
from hypothesis import strategies as st

from provisioner.files import (
    MARK,
    csv_cell,
    csv_value,
    formula_like,
    put_text,
    reason,
    write_atomically,
)

# --- text cells


@pytest.mark.parametrize(
    ("text", "written"),
    [
        ("=2+3", "'=2+3"),
        ("+49 40 123", "'+49 40 123"),
        ("@home", "'@home"),
        ("-A1", "'-A1"),
        ("\t=2+3", "'\t=2+3"),
        (" =1", "' =1"),  # behind a blank
        ("\t5", "'\t5"),  # a tab first, whatever follows
        ("\r\n=1", "'\r\n=1"),
        ("-5", "-5"),  # a plain number is no formula
        ("+49", "+49"),
        ("1,5e3", "1,5e3"),
        ("'quoted", "'quoted"),  # a quote of the user's own, before no formula
        ("'=2+3", "''=2+3"),  # one before a formula: one more, taken off again
        ("''-x", "'''-x"),
        ("normal", "normal"),
        ("", ""),
        ("a=b", "a=b"),
    ],
)
def test_a_csv_cell_is_never_run_and_reads_back(text: str, written: str) -> None:
    assert csv_cell(text) == written
    assert csv_value(written) == text


def test_a_mark_before_a_formula_in_any_csv_is_not_part_of_the_value() -> None:
    # What a user (or another tool) neutralised reads as the value it stands for.
    assert csv_value("'=SUM(1)") == "=SUM(1)"
    assert csv_value("'quoted") == "'quoted"
    assert csv_value("O'Brien") == "O'Brien"
    assert csv_value("'-5") == "'-5"  # -5 needs no mark, so this one is the user's


@given(st.text())
def test_every_text_round_trips_through_a_csv_cell(text: str) -> None:
    assert csv_value(csv_cell(text)) == text


@given(st.text())
def test_no_csv_cell_starts_a_formula(text: str) -> None:
    cell = csv_cell(text)
    assert not formula_like(cell) or cell.startswith(MARK)


def test_an_xlsx_text_cell_is_text_and_keeps_its_value(tmp_path: Path) -> None:
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    assert sheet is not None
    values = ["=2+3", "@home", "+49 40 123", "'quoted", "normal", "#N/A"]
    for row, value in enumerate(values, start=1):
        put_text(sheet.cell(row, 1), value)
    path = tmp_path / "cells.xlsx"
    workbook.save(path)

    back = openpyxl.load_workbook(path).active
    assert back is not None
    cells = [back.cell(row, 1) for row in range(1, len(values) + 1)]
    assert [c.value for c in cells] == values  # no quote added
    assert {c.data_type for c in cells} == {"s"}  # no formula, no error value
    assert [bool(c.quotePrefix) for c in cells] == [True, True, True, False, False, False]


# --- the atomic write


def test_a_new_file_is_written_whole(tmp_path: Path) -> None:
    path = tmp_path / "out.csv"
    write_atomically(path, lambda file: file.write(b"a,b\r\n"), replace=False)
    assert path.read_bytes() == b"a,b\r\n"
    assert [p.name for p in tmp_path.iterdir()] == ["out.csv"]


def test_without_replace_an_existing_file_is_refused_and_kept(tmp_path: Path) -> None:
    path = tmp_path / "out.csv"
    path.write_bytes(b"the installer's own")
    with pytest.raises(FileExistsError):
        write_atomically(path, lambda file: file.write(b"new"), replace=False)
    assert path.read_bytes() == b"the installer's own"
    assert [p.name for p in tmp_path.iterdir()] == ["out.csv"]


def test_a_file_that_appears_while_writing_is_not_replaced(tmp_path: Path) -> None:
    path = tmp_path / "out.csv"

    def write(file: IO[bytes]) -> None:
        path.write_bytes(b"someone else's")  # another program, meanwhile
        file.write(b"ours")

    with pytest.raises(FileExistsError):
        write_atomically(path, write, replace=False)
    assert path.read_bytes() == b"someone else's"


def test_with_replace_the_file_is_replaced(tmp_path: Path) -> None:
    path = tmp_path / "out.csv"
    path.write_bytes(b"old")
    write_atomically(path, lambda file: file.write(b"new"))
    assert path.read_bytes() == b"new"


def test_a_full_disk_leaves_the_old_file_and_no_temporary(tmp_path: Path) -> None:
    path = tmp_path / "site.xlsx"
    path.write_bytes(b"the installer's own")

    def full(file: IO[bytes]) -> None:
        file.write(b"PK half a workbook")
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    with pytest.raises(OSError) as caught:
        write_atomically(path, full)
    assert path.read_bytes() == b"the installer's own"
    assert [p.name for p in tmp_path.iterdir()] == ["site.xlsx"]
    assert "the disk is full and nothing was written" in reason(caught.value)


@pytest.mark.skipif(os.name == "nt", reason="POSIX modes")
def test_a_private_file_is_its_owners_only(tmp_path: Path) -> None:
    path = tmp_path / "keys.csv"
    write_atomically(path, lambda file: file.write(b"AppKey"), private=True)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_an_openpyxl_workbook_saves_through_it(tmp_path: Path) -> None:
    path = tmp_path / "book.xlsx"
    workbook = openpyxl.Workbook()
    write_atomically(path, workbook.save)
    assert openpyxl.load_workbook(io.BytesIO(path.read_bytes())).sheetnames == ["Sheet"]
