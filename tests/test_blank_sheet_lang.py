"""The blank workbook in English and German, through the real CLI: headers the template
reads, German texts, device type labels, optional Users columns, and a filled-in
workbook that validates and applies."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import openpyxl
import pytest
from click.testing import CliRunner
from openpyxl.workbook.workbook import Workbook
from openpyxl.worksheet.datavalidation import DataValidation
from openpyxl.worksheet.worksheet import Worksheet

from provisioner.cli import main
from provisioner.sandbox import Sandbox
from provisioner.templates import ColumnRule, TabSpec, layout_templates, load_template

# Tab names of each language: Devices, Users, Downlinks, Instructions, Lists.
TABS = {
    "en": ["Devices", "Users", "Downlinks", "Instructions", "Lists"],
    "de": ["Geräte", "Benutzer", "Downlinks", "Anleitung", "Listen"],
}
LABEL = "3 - Lobaro LoRaWAN wMBus Bridge"


def blank(tmp_path: Path, name: str, lang: str) -> tuple[Path, Workbook]:
    out = tmp_path / f"{name}-{lang}.xlsx"
    result = CliRunner().invoke(main, ["template", name, "--out", str(out), "--lang", lang])
    assert result.exit_code == 0, result.output
    return out, openpyxl.load_workbook(out)


def headers(sheet: Worksheet) -> list[str]:
    return [str(cell.value) for cell in sheet[1]]


def instructions_text(workbook: Workbook) -> str:
    sheet = workbook.worksheets[3]
    return "\n".join(str(c.value) for row in sheet.iter_rows() for c in row if c.value)


def validation_of(sheet: Worksheet, column: int) -> DataValidation:
    letter = openpyxl.utils.get_column_letter(column)
    return next(
        v for v in sheet.data_validations.dataValidation if str(v.sqref).startswith(f"{letter}2:")
    )


def dropdown(workbook: Workbook, validation: DataValidation) -> list[object]:
    tab, cells = str(validation.formula1).lstrip("=").split("!")
    return [row[0].value for row in workbook[tab][cells.replace("$", "")]]


@pytest.mark.parametrize("name", layout_templates())
def test_german_headers_are_ones_the_template_reads(tmp_path: Path, name: str) -> None:
    template = load_template(name)
    _, workbook = blank(tmp_path, name, "de")
    assert workbook.sheetnames == TABS["de"]
    for sheet, spec in zip(
        workbook.worksheets, (template.devices, template.users, template.downlinks), strict=False
    ):
        assert all(spec.field_for(h) is not None for h in headers(sheet)), headers(sheet)
    devices = headers(workbook.worksheets[0])
    if name == "default":
        assert devices[:3] == ["Seriennummer", "Adresse", "Bezeichnung"]
        assert {"Beschreibung", "Gerätetyp", "Breitengrad", "Längengrad"} <= set(devices)
    if name == "lorawan-meter":
        # The template's own header stays: an installer knows the DevEUI by that name.
        assert devices[:2] == ["DevEUI", "Bezeichnung"] and "Seriennummer" in devices
    if name == "lobaro-hardware-import":
        # Lobaro's import format reads only its own English headers: they stay.
        assert devices == ["serial", "address", "name", "config", "deviceTypeId"]
    assert headers(workbook.worksheets[1]) == ["Name", "E-Mail", "Passwort", "Rollen"]
    assert headers(workbook.worksheets[2]) == ["Gerät", "Typ", "Inhalt"]


def test_a_german_header_the_template_does_not_read_is_not_used(tmp_path: Path) -> None:
    own = tmp_path / "own.toml"
    own.write_text(
        '[devices]\ntab = ["Devices"]\n[devices.columns]\naddr = ["addr"]\n'
        'serial = ["serial", "Seriennummer"]\n',
        encoding="utf-8",
    )
    _, workbook = blank(tmp_path, str(own), "de")
    # No "Geräte" among the template's tab names, no "Adresse" among addr's headers.
    assert workbook.sheetnames[0] == "Devices"
    assert headers(workbook["Devices"]) == ["Seriennummer", "addr"]


def test_german_instructions_prompts_and_dropdown_labels(tmp_path: Path) -> None:
    _, workbook = blank(tmp_path, "default", "de")
    text = instructions_text(workbook)
    for german in (
        "So füllen Sie diese Arbeitsmappe aus (Vorlage 'default')",
        "über ihre Seriennummer zugeordnet (Spalte 'Seriennummer')",
        "Gelbe Überschriften sind Pflicht, graue optional",
        "mindestens 10 Zeichen, davon mindestens ein Buchstabe und eine Ziffer",
        "Passwörter erscheinen in keinem Bericht",
        "Leere Zellen auf dem Blatt 'Geräte' erhalten die Vorgaben der Vorlage: Gerätetyp 1",
        "Die Seriennummer vom Typenschild des Geräts.",
        "Gerätetypen (Spalte 'Gerätetyp')",
        "provisioner validate default-de.xlsx --template default    (prüft jede Zelle",
    ):
        assert german in text, german
    for english in ("required", "Example", "the platform", "Passwords", " tab"):
        assert english not in text, english
    devices = workbook["Geräte"]
    type_column = headers(devices).index("Gerätetyp") + 1
    validation = validation_of(devices, type_column)
    assert LABEL in dropdown(workbook, validation)
    assert validation.errorStyle == "warning" and "'Ja'" in str(validation.error)
    assert str(validation.prompt).startswith("Optional. Leer gelassen: 1 (Generic Device).")
    dtls = validation_of(devices, headers(devices).index("DTLS") + 1)
    assert dropdown(workbook, dtls) == ["ja", "nein"]
    assert str(validation_of(devices, 1).prompt).startswith("Pflicht. Beispiel: GW-2024-00417.")


def test_english_dropdown_labels(tmp_path: Path) -> None:
    _, workbook = blank(tmp_path, "default", "en")
    assert workbook.sheetnames == TABS["en"]
    devices = workbook["Devices"]
    validation = validation_of(devices, headers(devices).index("deviceTypeId") + 1)
    assert dropdown(workbook, validation)[2] == LABEL
    assert "Example: 1 - Generic Device." in str(validation.prompt)


@pytest.mark.parametrize("lang", ["en", "de"])
def test_users_columns_are_optional_as_the_tab_is(tmp_path: Path, lang: str) -> None:
    _, workbook = blank(tmp_path, "default", lang)
    optional, needed = {
        "en": ("Optional.", "Needed in every filled-in row."),
        "de": ("Optional.", "Pflicht in jeder ausgefüllten Zeile."),
    }[lang]
    users = workbook.worksheets[1]
    for j in range(1, len(headers(users)) + 1):
        prompt = str(validation_of(users, j).prompt)
        assert prompt.startswith(f"{optional} {needed}"), prompt
        assert users.cell(1, j).fill.fgColor.rgb.endswith("EDEDED")  # grey: optional
    rows = list(workbook.worksheets[3].iter_rows(values_only=True))
    users_rows = [r for r in rows if r[0] == users.title and r[1] in headers(users)]
    assert len(users_rows) == 4
    assert all(r[2] == "optional" and needed in str(r[3]) for r in users_rows)


def a_value(rule: ColumnRule | None, fallback: str) -> str:
    if rule is not None and rule.hex_length is not None:
        return ("70B3D5E75E0012E4" * 4)[: rule.hex_length]
    if rule is not None and rule.digits is not None:
        return ("352656100123456" * 2)[: rule.digits]
    return fallback


def fill_one_device_and_user(path: Path, workbook: Workbook, name: str) -> None:
    """Fill one device row as an installer does, the device type picked from the dropdown."""
    template = load_template(name)
    devices, users = workbook.worksheets[0], workbook.worksheets[1]
    values = {"serial": "GW-2024-00417", "addr": "0004A30B001C0530", "name": "Haus 4 Keller"}
    spec: TabSpec = template.devices
    for j, header in enumerate(headers(devices), start=1):
        field = spec.field_for(header)
        assert field is not None
        if field == "deviceTypeId":
            labels = dropdown(workbook, validation_of(devices, j))
            devices.cell(2, j, LABEL if LABEL in labels else labels[0])
        elif field in values or field in spec.rules:
            devices.cell(2, j, a_value(spec.rules.get(field), values.get(field, "")))
    for j, value in enumerate(
        ["Erika Mustermann", "erika@example.com", "geheim12345", "device-admin"], start=1
    ):
        users.cell(2, j, value)
    workbook.save(path)


@pytest.mark.parametrize("lang", ["en", "de"])
@pytest.mark.parametrize("name", layout_templates())
def test_a_filled_in_workbook_validates_clean(tmp_path: Path, name: str, lang: str) -> None:
    path, workbook = blank(tmp_path, name, lang)
    fill_one_device_and_user(path, workbook, name)
    report = tmp_path / "report.json"
    result = CliRunner().invoke(
        main, ["validate", str(path), "--template", name, "--report", str(report)]
    )
    assert result.exit_code == 0, result.output
    assert "2 rows: 2 valid, 0 invalid" in result.output
    assert "warning" not in result.output.lower(), result.output
    data = json.loads(report.read_text(encoding="utf-8"))
    assert data["totals"] == {"valid": 2, "invalid": 0}
    assert [row["sheet"] for row in data["rows"]] == TABS[lang][:2]
    assert all(not row["errors"] for row in data["rows"])


def test_apply_creates_the_labelled_type(sandbox: Sandbox, tmp_path: Path) -> None:
    path, workbook = blank(tmp_path, "default", "de")
    fill_one_device_and_user(path, workbook, "default")
    env = {k: v for k, v in os.environ.items() if not k.startswith("PROVISIONER_")}
    env["PROVISIONER_TOKEN"] = sandbox.tokens["org-admin"]
    result = subprocess.run(
        [sys.executable, "-m", "provisioner", "apply", str(path), "--url", sandbox.url, "--yes"],
        env=env,
        cwd=tmp_path,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    [device] = sandbox.store.devices_by("serial", "GW-2024-00417")
    assert device["deviceTypeId"] == 3


def test_template_prints_the_german_headers(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["template", "default", "--lang", "de"])
    assert result.exit_code == 0, result.output
    assert "devices (tab Geräte, Devices):" in result.output
    assert "  Seriennummer *  (also: serial, serial number, S/N)" in result.output
    assert "  Name  (also: full name, vollständiger Name, Vor- und Nachname)" in result.output
    english = CliRunner().invoke(main, ["template", "default"])
    assert "  serial *  (also: serial number, Seriennummer, S/N)" in english.output


def test_an_unknown_language_is_a_usage_error(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        main, ["template", "default", "--out", str(tmp_path / "x.xlsx"), "--lang", "fr"]
    )
    assert result.exit_code == 2
    assert "'fr' is not one of 'en', 'de'" in result.output
    assert not (tmp_path / "x.xlsx").exists()
