"""Build the sample sheets in this folder and the mistake list in its README.

    python sample_sheets/make_samples.py [OUTPUT_FOLDER]

- site-hh-04.xlsx: a valid LoRaWAN site (template lorawan-meter): 60 meters, a Users
  tab and a Downlinks tab.
- site-hh-04-mistakes.xlsx: the same kind of site with one row per kind of mistake.
- gateways-de.csv: NB-IoT wMBus gateways as German Excel saves a CSV: `;`, cp1252
  (template wmbus-gateway-nbiot).
- hardware-import.csv: Lobaro's admin "Hardware Import" CSV (template
  lobaro-hardware-import).

The README's table of mistakes is produced by validating the mistakes sheet, so it
always shows the messages the tool really gives.
"""

from __future__ import annotations

import datetime
import sys
from pathlib import Path
from typing import Any

import openpyxl

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from provisioner.templates import load_template  # noqa: E402
from provisioner.validation import validate_sheet  # noqa: E402

SITE_TAG = "Site-HH-04"
DEVICE_HEADER = [
    "DevEUI",
    "serial",
    "name",
    "description",
    "JoinEUI",
    "AppKey",
    "tags",
    "lat",
    "lon",
]
STREETS = ["Grindelallee 12", "Grindelallee 14", "Rutschbahn 3", "Bundesstraße 55"]
ROOMS = ["Küche", "Bad", "Gäste-WC", "Heizungsraum", "Flur"]


def meter(i: int) -> list[Any]:
    """One realistic LoRaWAN water meter row."""
    street = STREETS[i % len(STREETS)]
    floor = i // 8
    return [
        f"70B3D5E75E{i:06X}",
        f"WZ{2024_0000 + i}",
        f"Wasserzähler {street} {floor}.OG",
        f"{street}, {floor}. OG, {ROOMS[i % len(ROOMS)]}, Zählerstand bei Einbau {i * 3} m³",
        "70B3D5E75E000000",
        f"{(0x2B7E151628AED2A6ABF7158809CF4F3C + i * 7919):032X}",
        f"{SITE_TAG},Wasser",
        f"53.{5660 + i:04d}",
        f"9.{9780 + i:04d}",
    ]


USERS = [
    ["name", "email", "password", "roles"],
    ["Jana Schröder", "j.schroeder@stadtwerke-example.de", "Gr1ndel-Zaehler", "org-admin"],
    ["Mehmet Öztürk", "m.oeztuerk@stadtwerke-example.de", "Wasser2026uhr", "device-admin"],
    ["Lena Voß", "l.voss@stadtwerke-example.de", "Hausmeister7Lena", "device-admin"],
]


def downlinks(keys: list[str]) -> list[list[str]]:
    return [
        ["key", "type", "payload"],
        *[
            [k, "lorawan", '{"data": "cmodeDurSec=600", "type": "ascii", "fPort": 128}']
            for k in keys[:4]
        ],
        [keys[4], "config", '{"d": {"listenCron": "0 0/20 * * * *"}, "q": "config"}'],
    ]


def save(path: Path, tabs: dict[str, list[list[Any]]]) -> None:
    book = openpyxl.Workbook()
    first = True
    for name, rows in tabs.items():
        if first:
            sheet = book.active
            assert sheet is not None
            sheet.title = name
            first = False
        else:
            sheet = book.create_sheet(name)
        for row in rows:
            sheet.append(row)
        for cells in sheet.iter_rows():
            for cell in cells:
                if isinstance(cell.value, str) and not cell.value.startswith("="):
                    cell.number_format = "@"  # Text, as an installer's identifier columns are
    book.save(path)


# (what the installer did, row cells as a dict over DEVICE_HEADER, expected problem code)
MISTAKES: list[tuple[str, dict[str, Any], str]] = [
    (
        "typed a DevEUI of digits into a General cell: stored as a number",
        {"DevEUI": 1234567890123456},
        "id-stored-as-number",
    ),
    (
        "pasted a DevEUI that Excel had shown as 1.23457E+15",
        {"DevEUI": "1.23457E+15"},
        "id-scientific",
    ),
    (
        "a serial that went through a number column: 20240017.0",
        {"serial": "20240017.0"},
        "id-decimal",
    ),
    (
        "a DevEUI that lost its leading zero (15 hex digits)",
        {"DevEUI": "4A30B001C0530AB"},
        "id-lost-leading-zero",
    ),
    (
        "an AppKey with a typo (O instead of 0)",
        {"AppKey": "2B7E151628AED2A6ABF7158809CF4F3O"},
        "id-format",
    ),
    (
        "a serial that Excel turned into a date",
        {"serial": datetime.datetime(2026, 12, 1)},
        "date-not-text",
    ),
    (
        "a name from a formula that was never calculated",
        {"name": '=CONCAT("Zähler ", B9)'},
        "formula-without-value",
    ),
    ("a latitude with a letter in it", {"lat": "53.5x"}, "not-a-number"),
    ("a longitude without its latitude", {"lat": ""}, "half-location"),
    ("a DevEUI copied from the row above", {"DevEUI": "COPY"}, "duplicate-key"),
    ("a description longer than the platform takes", {"description": "Keller " * 700}, "schema"),
    ("a device type given by name", {"deviceTypeId": "LoRaWAN Meter"}, "not-a-device-type"),
]

USER_MISTAKES: list[tuple[str, list[str], str]] = [
    (
        "an email without a domain",
        ["Tim Test", "tim@stadtwerke", "Sicher3sPasswort", "device-admin"],
        "schema",
    ),
    (
        "a password that is too short",
        ["Ida Test", "ida@stadtwerke-example.de", "kurz1", "device-admin"],
        "schema",
    ),
    (
        "a role the platform does not have",
        ["Ole Test", "ole@stadtwerke-example.de", "Sicher3sPasswort", "admin"],
        "schema",
    ),
    (
        "the same email twice",
        ["Tim Zwei", "TIM@stadtwerke", "Sicher3sPasswort", "device-admin"],
        "duplicate-email",
    ),
]

OTHER_MISTAKES = {
    "unknown-column": "a column the template does not know (a warning)",
    "bad-json": "a downlink payload with a missing brace",
    "downlink-device-not-in-sheet": "a downlink for a device not in the sheet (a warning)",
    "downlink-type": "a downlink type the platform does not have",
    "schema": "a LoRaWAN downlink on a port above 223",
}


def mistake_rows() -> list[list[Any]]:
    header = [*DEVICE_HEADER, "deviceTypeId", "Farbe"]
    rows: list[list[Any]] = [header]
    for n, (_, change, _) in enumerate(MISTAKES):
        row: list[Any] = [*meter(100 + n), "4", ""]
        for column, value in change.items():
            row[header.index(column)] = rows[-1][0] if value == "COPY" else value
        rows.append(row)
    rows[1][-1] = "blau"  # a column the template does not know: a warning
    return rows


def build(folder: Path) -> dict[str, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = {
        name: folder / name
        for name in (
            "site-hh-04.xlsx",
            "site-hh-04-mistakes.xlsx",
            "gateways-de.csv",
            "hardware-import.csv",
        )
    }

    meters = [meter(i) for i in range(60)]
    save(
        paths["site-hh-04.xlsx"],
        {
            "Devices": [DEVICE_HEADER, *meters],
            "Users": USERS,
            "Downlinks": downlinks([m[0] for m in meters]),
        },
    )

    devices = mistake_rows()
    save(
        paths["site-hh-04-mistakes.xlsx"],
        {
            "Devices": devices,
            "Users": [USERS[0], USERS[1], *[row for _, row, _ in USER_MISTAKES]],
            "Downlinks": [
                ["key", "type", "payload"],
                [devices[6][0], "config", '{"d": {"listenCron": "0 0/20 * * * *"}, "q": "config"'],
                ["70B3D5E75EFFFFFF", "config", '{"d": {"cmodeDurSec": "600"}, "q": "config"}'],
                [devices[7][0], "reboot", "{}"],
                [devices[12][0], "lorawan", '{"data": "AQID", "type": "base64", "fPort": 300}'],
            ],
        },
    )

    gateways = ["Seriennummer;IMEI;Bezeichnung;Standort;Wohnung"]
    for i in range(12):
        gateways.append(
            f"GW-{4100 + i};{352656100677000 + i * 17};Gateway Haus {i + 1};"
            f'"Keller, Hausanschlussraum; Zugang über Hof {"Süd" if i % 2 else "Nord"}";'
            f"Haus {i + 1},{SITE_TAG}"
        )
    paths["gateways-de.csv"].write_bytes(("\r\n".join(gateways) + "\r\n").encode("cp1252"))

    hardware = ["address,name,serial,firmware,config,cfg:listenCron,cfg:cmodeDurSec"]
    for i in range(10):
        hardware.append(
            f"0004A30B001C{i:04X},Bridge {i + 1},LB-{7000 + i},app-1.4.2,"
            f'"{{""mFilter"": ""LOB""}}",0 0/20 * * * *,600'
        )
    paths["hardware-import.csv"].write_text("\n".join(hardware) + "\n", encoding="utf-8")
    return paths


def mistakes_table(path: Path) -> str:
    """The README's table: each mistake, its cell and the message the tool gives."""
    report = validate_sheet(path, load_template("lorawan-meter"))
    found = report.errors + report.warnings
    lines = ["| what the installer did | cell | message |", "|---|---|---|"]
    cases = [("Devices", 2 + n, what, code) for n, (what, _, code) in enumerate(MISTAKES)]
    cases += [("Users", 3 + n, what, code) for n, (what, _, code) in enumerate(USER_MISTAKES)]
    for sheet, row, what, code in cases:
        problem = next(p for p in found if p.sheet == sheet and p.row == row and p.code == code)
        message = problem.message if len(problem.message) < 160 else problem.message[:157] + "..."
        lines.append(f"| {what} | `{sheet}!{problem.cell}` | {message} |")
    for problem in found:
        if problem.code in OTHER_MISTAKES and (problem.sheet == "Downlinks" or problem.row == 1):
            lines.append(
                f"| {OTHER_MISTAKES[problem.code]} | `{problem.sheet}!{problem.cell}` "
                f"| {problem.message} |"
            )
    return "\n".join(lines)


README_HEAD = """# Sample sheets

Made by `python sample_sheets/make_samples.py` (run it again after changing the tool;
`tests/test_samples.py` fails when this folder is out of date).

| file | template | what it shows |
|---|---|---|
| `site-hh-04.xlsx` | `lorawan-meter` | a valid site: 60 LoRaWAN water meters, 3 users, 5 downlinks |
| `site-hh-04-mistakes.xlsx` | `lorawan-meter` | one row per kind of mistake (below) |
| `gateways-de.csv` | `wmbus-gateway-nbiot` | German Excel CSV: `;`, cp1252, a quoted field with `;` |
| `hardware-import.csv` | `lobaro-hardware-import` | Lobaro's admin Hardware Import CSV with `cfg:` columns |

    provisioner validate sample_sheets/site-hh-04-mistakes.xlsx --template lorawan-meter

## The mistakes and what the tool says

"""


def readme(mistakes: Path) -> str:
    return README_HEAD + mistakes_table(mistakes) + "\n"


def main() -> None:
    folder = Path(sys.argv[1]) if len(sys.argv) > 1 else HERE
    paths = build(folder)
    (folder / "README.md").write_text(readme(paths["site-hh-04-mistakes.xlsx"]), encoding="utf-8")
    for path in paths.values():
        print(path.name)


if __name__ == "__main__":
    main()
