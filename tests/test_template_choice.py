"""Without --template: the template the installer meant, and a first line that says which.

Through the real CLI against the sandbox (the store read back to prove what was sent),
plus the choice itself on small sheets.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import openpyxl
import pytest

from provisioner import sheets
from provisioner.sandbox import Sandbox
from provisioner.sheets import SheetError, open_workbook
from provisioner.template_choice import Setting, choose_template
from provisioner.templates import TemplateError

SAMPLES = Path(__file__).resolve().parent.parent / "sample_sheets"
VALID = SAMPLES / "site-hh-04.xlsx"
TEMPLATES = Path(__file__).resolve().parent.parent / "templates"
FITS_LORAWAN = "template lorawan-meter: fits the headers; --template to choose another"


def cli(
    folder: Path, *args: str, sb: Sandbox | None = None, **env: str
) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("PROVISIONER_")}
    if sb is not None:
        environment.update(PROVISIONER_URL=sb.url, PROVISIONER_TOKEN=sb.tokens["org-admin"])
    environment.update(env)
    return subprocess.run(
        [sys.executable, "-m", "provisioner", *args],
        cwd=folder,
        env=environment,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=300,
    )


def explain(done: subprocess.CompletedProcess[str]) -> str:
    return f"exit {done.returncode}\nstdout:\n{done.stdout}\nstderr:\n{done.stderr}"


def first_line(done: subprocess.CompletedProcess[str]) -> str:
    return done.stdout.splitlines()[0]


def write_csv(path: Path, *lines: str) -> Path:
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


# --- the sample sheet, a blank workbook, an export, a results copy -----------------------------


def test_the_valid_sample_reads_clean_without_template(tmp_path: Path) -> None:
    done = cli(tmp_path, "validate", str(VALID))
    assert done.returncode == 0, explain(done)
    lines = done.stdout.splitlines()
    assert lines[:2] == [FITS_LORAWAN, "68 rows: 68 valid, 0 invalid"]


def test_a_filled_blank_workbook_is_applied_with_its_own_template(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    made = cli(tmp_path, "template", "lorawan-meter", "--out", "meters.xlsx")
    assert made.returncode == 0, explain(made)
    workbook = openpyxl.load_workbook(tmp_path / "meters.xlsx")
    devices = workbook["Devices"]
    headers = [c.value for c in devices[1]]
    # Only DevEUI and serial: lorawan-meter's own blank workbook, whose headers the default
    # template does not read (DevEUI), and whose extra columns stay empty.
    row = {"DevEUI": "70B3D5E75E00AA01", "serial": "SN-AA01", "JoinEUI": "70B3D57ED0000001"}
    devices.append([row.get(str(h)) for h in headers])
    workbook.save(tmp_path / "meters.xlsx")  # as the installer's Excel saves it

    done = cli(tmp_path, "apply", "meters.xlsx", "--yes", sb=sandbox)
    assert done.returncode == 0, explain(done)
    assert first_line(done) == (
        "template lorawan-meter: recorded in meters.xlsx, which this tool made; "
        "--template to choose another"
    )
    [device] = sandbox.store.list_devices(limit=10)
    assert device["addr"] == "70B3D5E75E00AA01"
    assert device["deviceTypeId"] == 4  # lorawan-meter's default, not default's 1
    assert device["initialConfig"] == {"JoinEUI": "70B3D57ED0000001"}

    # The results copy records the template too: its rows read back the same way.
    again = cli(tmp_path, "validate", "meters.results.xlsx")
    assert again.returncode == 0, explain(again)
    assert first_line(again).startswith("template lorawan-meter: recorded in meters.results.xlsx")


def test_an_export_is_applied_again_without_template(sandbox: Sandbox, tmp_path: Path) -> None:
    sandbox.store.insert_devices(
        [
            {
                "addr": f"0004A30B0000000{i}",
                "serial": f"SN-{i}",
                "deviceTypeId": 4,
                "tags": ["Site-X"],
            }
            for i in range(1, 4)
        ]
    )
    exported = cli(
        tmp_path,
        "export",
        "--out",
        "site.xlsx",
        "-t",
        "lorawan-meter",
        "--tag",
        "Site-X",
        sb=sandbox,
    )
    assert exported.returncode == 0, explain(exported)
    instructions = openpyxl.load_workbook(tmp_path / "site.xlsx")["Instructions"]
    text = "\n".join(str(c.value) for c in instructions["A"] if c.value)
    assert "records its site template 'lorawan-meter'" in text

    done = cli(tmp_path, "apply", "site.xlsx", "--yes", sb=sandbox)
    assert done.returncode == 0, explain(done)
    assert first_line(done).startswith("template lorawan-meter: recorded in site.xlsx")
    assert "create 0 · exists 3 · differs 0 · blocked 0" in done.stdout
    assert sandbox.store.count_devices() == 3


def test_the_record_survives_an_edit_by_openpyxl_and_a_copy_to_another_name(
    tmp_path: Path,
) -> None:
    assert cli(tmp_path, "template", "wmbus-gateway-nbiot", "--out", "gw.xlsx").returncode == 0
    workbook = openpyxl.load_workbook(tmp_path / "gw.xlsx")
    workbook["Devices"].append(["GW-1", "352656100677000"])
    workbook.save(tmp_path / "renamed.xlsx")
    assert open_workbook(tmp_path / "renamed.xlsx").template == "wmbus-gateway-nbiot"
    # A vendor's sheet records nothing.
    assert open_workbook(VALID).template is None


# --- the settings, and what is left: default --------------------------------------------------


GATEWAYS = ("Seriennummer,IMEI,Bezeichnung", "GW-1,352656100677000,Gateway 1")


def test_provisioner_template_and_the_settings_file(sandbox: Sandbox, tmp_path: Path) -> None:
    # A site's own copy of the gateway template, with its site tag.
    own = (TEMPLATES / "wmbus-gateway-nbiot.toml").read_text(encoding="utf-8")
    (tmp_path / "site.toml").write_text('site_tag = "Haus-4"\n' + own, encoding="utf-8")
    write_csv(tmp_path / "gw.csv", *GATEWAYS)

    # The headers fit the built-in gateway template as well: the site's own copy is kept.
    done = cli(tmp_path, "apply", "gw.csv", "--yes", sb=sandbox, PROVISIONER_TEMPLATE="site.toml")
    assert done.returncode == 0, explain(done)
    assert first_line(done) == "template site.toml: from PROVISIONER_TEMPLATE; it fits the headers"
    [device] = sandbox.store.list_devices(limit=10)
    assert "Haus-4" in device["tags"] and device["deviceTypeId"] == 2

    # A sheet no built-in reads whole (an extra column): the settings file's template.
    write_csv(tmp_path / "notes.csv", "serial,addr,Notiz", "SN-1,70B3D5E700000001,Keller")
    (tmp_path / "provisioner.toml").write_text('template = "lorawan-meter"\n', encoding="utf-8")
    done = cli(tmp_path, "validate", "notes.csv")
    assert first_line(done) == "template lorawan-meter: from provisioner.toml"
    # A sheet it reads whole: kept, though built-ins read it whole too.
    write_csv(tmp_path / "plain.csv", "serial,addr,name", "SN-1,70B3D5E700000001,Meter")
    done = cli(tmp_path, "validate", "plain.csv")
    assert first_line(done) == "template lorawan-meter: from provisioner.toml; it fits the headers"
    # A sheet it does not read whole and one built-in does: the built-in.
    done = cli(tmp_path, "validate", "gw.csv")
    assert first_line(done) == (
        "template wmbus-gateway-nbiot: fits the headers; --template to choose another"
    )
    # The command line wins over all.
    done = cli(tmp_path, "validate", "notes.csv", "-t", "default")
    assert first_line(done) == "template default: given with --template"


def test_unknown_headers_fall_to_default_with_the_hint_first(tmp_path: Path) -> None:
    rows = [f"70B3D5E75E{i:06X},Zähler {i},rot" for i in range(80)]
    write_csv(tmp_path / "keys.csv", "DevEUI,name,Farbe", *rows)
    done = cli(tmp_path, "validate", "keys.csv")
    assert done.returncode == 1, explain(done)
    assert first_line(done) == (
        "template default: these headers fit the template 'lorawan-meter' best "
        "(not every column): add --template lorawan-meter if the sheet is meant for it"
    )
    # Farbe is a warning; DevEUI is an error: lorawan-meter reads it, default does not.
    assert done.stdout.splitlines()[1] == "80 rows: 0 valid, 80 invalid, 1 warning"
    # Each missing column once; no line per row.
    assert done.stdout.count("has no column for addr") == 1
    assert done.stdout.count("has no column for serial") == 1
    assert "the row has no" not in done.stdout
    assert len(done.stdout.splitlines()) < 20, done.stdout

    write_csv(tmp_path / "odd.csv", "Gerät,Nummer", "A,1", "B,2")
    done = cli(tmp_path, "validate", "odd.csv")
    assert first_line(done).startswith("template default: no template fits these headers")


# --- a saved plan ------------------------------------------------------------------------------


def test_a_saved_plan_brings_its_template_and_a_mismatch_names_both(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    shutil.copyfile(VALID, tmp_path / "site.xlsx")
    planned = cli(tmp_path, "plan", "site.xlsx", "--out", "p.json", sb=sandbox)
    assert planned.returncode == 0, explain(planned)
    assert first_line(planned) == FITS_LORAWAN
    assert json.loads((tmp_path / "p.json").read_text(encoding="utf-8"))["template"] == (
        "lorawan-meter"
    )

    mismatch = cli(
        tmp_path, "apply", "site.xlsx", "-t", "default", "--plan", "p.json", "--yes", sb=sandbox
    )
    assert mismatch.returncode == 2, explain(mismatch)
    assert "p.json was made with the template 'lorawan-meter'" in mismatch.stderr
    assert "with 'default'" in mismatch.stderr
    assert "the sheet or template changed" not in mismatch.stderr
    assert sandbox.store.count_devices() == 0

    done = cli(tmp_path, "apply", "site.xlsx", "--plan", "p.json", "--yes", sb=sandbox)
    assert done.returncode == 0, explain(done)
    assert first_line(done) == (
        "template lorawan-meter: the one p.json was made with; --template to choose another"
    )
    assert sandbox.store.count_devices() == 60  # and 3 users


# --- the choice itself ----------------------------------------------------------------------------


def test_several_built_ins_fit_plain_names_mean_default(tmp_path: Path) -> None:
    # "addr, serial, name" is read whole by default, lorawan-meter and the gateway template.
    sheet = write_csv(tmp_path / "plain.csv", "addr,serial,name", "A1,S1,N1")
    choice = choose_template(sheet)
    assert choice.template.name == "default"
    assert choice.line == "template default: fits the headers; --template to choose another"


def test_a_recorded_template_file_is_found_beside_the_workbook_or_named(tmp_path: Path) -> None:
    own = tmp_path / "own.toml"
    shutil.copyfile(TEMPLATES / "lorawan-meter.toml", own)
    assert cli(tmp_path, "template", "own.toml", "--out", "blank.xlsx").returncode == 0
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    shutil.move(tmp_path / "blank.xlsx", elsewhere / "blank.xlsx")
    shutil.move(own, elsewhere / "own.toml")
    choice = choose_template(elsewhere / "blank.xlsx")
    assert choice.template.name == "own"
    assert "recorded in blank.xlsx" in choice.line

    (elsewhere / "own.toml").unlink()
    with pytest.raises(TemplateError, match=r"blank.xlsx was made with the template file own.toml"):
        choose_template(elsewhere / "blank.xlsx")
    # --template still works, and says so.
    given = choose_template(elsewhere / "blank.xlsx", "default")
    assert given.line == "template default: given with --template"


def test_a_setting_that_cannot_load_is_an_error() -> None:
    with pytest.raises(TemplateError, match="set in provisioner.toml: unknown template 'nope'"):
        choose_template(VALID, setting=Setting("nope", "provisioner.toml"))


def test_export_takes_the_setting_else_default() -> None:
    assert choose_template(None).template.name == "default"
    setting = Setting("lorawan-meter", "PROVISIONER_TEMPLATE")
    assert choose_template(None, setting=setting).template.name == "lorawan-meter"


def test_the_sheet_read_for_the_choice_is_not_read_again(tmp_path: Path) -> None:
    sheet = tmp_path / "site.xlsx"
    shutil.copyfile(VALID, sheet)
    choose_template(sheet)
    handed = open_workbook(sheet)
    # Only the header was read for the choice, and the tab is kept to be read on.
    assert handed.template is None and "Devices" in handed._rows and not handed._tables
    # Taken once: the next open reads the file again.
    assert "Devices" not in open_workbook(sheet)._rows
    # A file changed since is read afresh.
    choose_template(sheet)
    shutil.copyfile(SAMPLES / "site-hh-04-mistakes.xlsx", sheet)
    assert open_workbook(sheet).table("Devices").headers[-1] == "Farbe"
    assert sheets._kept is None


def test_an_unreadable_sheet_is_a_sheet_error(tmp_path: Path) -> None:
    with pytest.raises(SheetError, match="file not found"):
        choose_template(tmp_path / "none.xlsx")
