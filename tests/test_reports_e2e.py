"""Reports as an installer opens them, from real runs of the CLI against the sandbox:
the HTML page in headless Chromium (its columns, shortened values with the whole
value in the tooltip, platform ids, local times), the CSV as Excel would read it."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import openpyxl
from browser import shown
from test_apply_e2e import RUN_TIMEOUT, environment

from provisioner.sandbox import Sandbox

LONG = " / ".join(["Zählerschrank im Keller, hinter der zweiten Tür links"] * 3)
SERIALS = ("0077", "00177", "00277")  # leading zeros: Excel would make numbers of them


def cli(sb: Sandbox, folder: Path, *words: str, **env: str) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [sys.executable, "-m", "provisioner", *words, "--url", sb.url],
        env={**environment(sb.tokens["org-admin"]), **env},
        cwd=folder,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT,
    )
    assert "Traceback" not in done.stderr, done.stderr
    return done


def site(folder: Path, description: str = "Keller") -> Path:
    """A German CSV: ';', serials with leading zeros that Excel would make numbers of."""
    sheet = folder / "site.csv"
    lines = ["serial;addr;name;description"]
    lines += [
        f"{serial};70B3D5E7000000{i:02X};Zähler {i};{description}"
        for i, serial in enumerate(SERIALS)
    ]
    sheet.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return sheet


def platform_ids(sb: Sandbox) -> dict[str, int]:
    return {serial: int(sb.store.devices_by("serial", serial)[0]["id"]) for serial in SERIALS}


def test_plan_page_shows_columns_that_say_something(sandbox: Sandbox, tmp_path: Path) -> None:
    sheet = site(tmp_path)
    assert cli(sandbox, tmp_path, "apply", str(sheet), "--yes").returncode == 0
    site(tmp_path, description=LONG)  # every row now differs in its description
    sheet.write_text(sheet.read_text(encoding="utf-8").replace(LONG, "Keller", 2), encoding="utf-8")
    done = cli(sandbox, tmp_path, "plan", str(sheet), "--report", "plan.html")
    assert done.returncode == 0, done.stdout + done.stderr

    page = shown(tmp_path / "plan.html")
    # One tab: no Sheet column. Message once; the reason only where it says more.
    assert page.headings == ["Row", "Key", "Action", "Message", "Platform id", "Details"]
    ids = platform_ids(sandbox)
    by_key = {row["Key"].text: row for row in page.rows}
    for serial in ("0077", "00177"):
        row = by_key[serial]
        assert row["Action"].text == "exists"
        assert row["Message"].text == "already on the platform"
        assert row["Details"].text == ""  # the reason is the message: said once
        assert row["Platform id"].text == str(ids[serial])
    differs = by_key["00277"]
    assert differs["Action"].text == "differs"
    assert "…" in differs["Details"].text and LONG not in differs["Details"].text
    assert f"'{LONG}'" in differs["Details"].titles  # the whole value in the tooltip
    # ... and in the JSON, untouched.
    cli(sandbox, tmp_path, "plan", str(sheet), "--report", "plan.json")
    report = json.loads((tmp_path / "plan.json").read_text(encoding="utf-8"))
    [row] = [row for row in report["rows"] if row["action"] == "differs"]
    assert row["diff"]["description"]["sheet"] == LONG


def test_csv_report_opens_in_excel_with_the_sheets_delimiter_and_ids_as_text(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    sheet = site(tmp_path)
    done = cli(sandbox, tmp_path, "plan", str(sheet), "--report", "plan.csv")
    assert done.returncode == 0, done.stdout + done.stderr
    raw = (tmp_path / "plan.csv").read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")  # the BOM: Excel reads UTF-8
    text = raw.decode("utf-8-sig")
    dialect = csv.Sniffer().sniff(text, delimiters=",;")
    assert dialect.delimiter == ";"
    lines = list(csv.DictReader(text.splitlines(), dialect=dialect))
    # ="..." is the form Excel keeps as text: 0077 stays 0077, not 77.
    assert [line["key"] for line in lines] == [f'="{serial}"' for serial in SERIALS]
    assert [line["row"] for line in lines] == ["2", "3", "4"]


def test_verify_page_gives_local_times_with_the_offset(sandbox: Sandbox, tmp_path: Path) -> None:
    sheet = site(tmp_path)
    berlin = {"TZ": "Europe/Berlin"}
    assert cli(sandbox, tmp_path, "apply", str(sheet), "--yes").returncode == 0
    [first, *_] = sandbox.store.devices_by("serial", "0077")
    sandbox.store.add_parsed_data(int(first["id"]), {"volume_m3": 1.5}, None)
    done = cli(sandbox, tmp_path, "verify", str(sheet), "--report", "verify.html", **berlin)
    assert done.returncode == 1, done.stdout + done.stderr  # two are silent

    page = shown(tmp_path / "verify.html")
    assert page.headings == [
        "Row",
        "Key",
        "Status",
        "Message",
        "Platform id",
        "Installed",
        "Last data",
        "Records",
    ]
    by_key = {row["Key"].text: row for row in page.rows}
    # December in Berlin: UTC+1, written with its offset.
    assert by_key["0077"]["Last data"].text.endswith(" +01:00")
    assert all(row["Installed"].text.endswith(" +01:00") for row in page.rows)
    assert by_key["00177"]["Last data"].text == ""
    assert "+01:00" in page.text.split("Rows")[0]  # the made time above the table


def test_plan_console_lists_differences_as_a_table_with_short_values(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    sheet = site(tmp_path)
    assert cli(sandbox, tmp_path, "apply", str(sheet), "--yes").returncode == 0
    site(tmp_path, description=LONG)
    done = cli(sandbox, tmp_path, "plan", str(sheet), "--show", "1")
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    at = lines.index("site.csv row 2 (key 0077): differs")
    assert lines[at + 1].split() == ["field", "sheet", "platform"]
    cells = lines[at + 3].split(maxsplit=1)
    assert cells[0] == "description"
    assert cells[1].startswith("'Zählerschrank im Keller, hinter der zwe…'")
    assert cells[1].endswith("'Keller'")
    assert LONG not in done.stdout


def test_platform_ids_link_to_the_device_where_its_address_is_known(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    sheet = site(tmp_path)
    (tmp_path / "provisioner.toml").write_text(
        'device-link = "https://platform.example/devices/{id}"\n', encoding="utf-8"
    )
    done = cli(sandbox, tmp_path, "apply", str(sheet), "--yes", "--report", "apply.html")
    assert done.returncode == 0, done.stdout + done.stderr
    ids = platform_ids(sandbox)

    page = shown(tmp_path / "apply.html")
    assert "Platform id" in page.headings
    for row in page.rows:
        serial = row["Key"].text
        assert row["Status"].text == "created"
        assert row["Platform id"].links == [f"https://platform.example/devices/{ids[serial]}"]

    results = openpyxl.load_workbook(tmp_path / "site.results.xlsx")
    tab = results.active
    assert tab is not None
    header = [cell.value for cell in tab[1]]
    column = header.index("Platform id") + 1
    cell = tab.cell(2, column)
    assert cell.value == ids["0077"]
    assert cell.hyperlink is not None
    assert cell.hyperlink.target == f"https://platform.example/devices/{ids['0077']}"


def test_a_device_link_that_is_no_web_address_is_refused(sandbox: Sandbox, tmp_path: Path) -> None:
    sheet = site(tmp_path)
    done = cli(sandbox, tmp_path, "plan", str(sheet), "--device-link", "javascript:alert(1)")
    assert done.returncode == 2
    assert "the device link must be an http(s) address with {id}" in done.stderr
