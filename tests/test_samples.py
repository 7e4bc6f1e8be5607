"""The sample sheets: up to date, valid where meant, and every mistake caught at its cell."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from provisioner.templates import load_template
from provisioner.validation import validate_sheet

SAMPLES = Path(__file__).resolve().parent.parent / "sample_sheets"


def _load_builder() -> ModuleType:
    spec = importlib.util.spec_from_file_location("make_samples", SAMPLES / "make_samples.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules["make_samples"] = module
    spec.loader.exec_module(module)
    return module


make_samples = _load_builder()


def without_time(report: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in report.items() if k != "made_at"}


def test_committed_samples_are_up_to_date(tmp_path: Path) -> None:
    fresh = make_samples.build(tmp_path)
    readme = make_samples.readme(fresh["site-hh-04-mistakes.xlsx"])
    assert (SAMPLES / "README.md").read_text(encoding="utf-8") == readme, (
        "run: python sample_sheets/make_samples.py"
    )
    for name, path in fresh.items():
        template = {
            "gateways-de.csv": "wmbus-gateway-nbiot",
            "hardware-import.csv": "lobaro-hardware-import",
        }.get(name, "lorawan-meter")
        committed = validate_sheet(SAMPLES / name, load_template(template)).to_dict()
        rebuilt = validate_sheet(path, load_template(template)).to_dict()
        assert without_time(committed) == without_time(rebuilt), name


@pytest.mark.parametrize(
    ("name", "template", "devices"),
    [
        ("site-hh-04.xlsx", "lorawan-meter", 60),
        ("gateways-de.csv", "wmbus-gateway-nbiot", 12),
        ("hardware-import.csv", "lobaro-hardware-import", 10),
    ],
)
def test_valid_samples_are_valid(name: str, template: str, devices: int) -> None:
    report = validate_sheet(SAMPLES / name, load_template(template))
    # The German Excel CSV is Windows-1252, which the person is told once.
    warnings = ["csv-encoding"] if name == "gateways-de.csv" else []
    assert report.ok, [p.message for p in report.errors]
    assert [p.code for p in report.warnings] == warnings, [p.message for p in report.warnings]
    assert len(report.records.devices) == devices


def test_german_csv_keeps_umlauts_and_quoted_semicolons() -> None:
    report = validate_sheet(SAMPLES / "gateways-de.csv", load_template("wmbus-gateway-nbiot"))
    first = report.records.devices[0].body
    assert first["description"] == "Keller, Hausanschlussraum; Zugang über Hof Nord"
    assert first["addr"] == "352656100677000"


MISTAKES = [("Devices", 2 + n, code) for n, (_, _, code) in enumerate(make_samples.MISTAKES)]
MISTAKES += [("Users", 3 + n, code) for n, (_, _, code) in enumerate(make_samples.USER_MISTAKES)]


@pytest.fixture(scope="module")
def mistakes() -> list[Any]:
    report = validate_sheet(SAMPLES / "site-hh-04-mistakes.xlsx", load_template("lorawan-meter"))
    return report.errors + report.warnings


@pytest.mark.parametrize(("sheet", "row", "code"), MISTAKES)
def test_each_mistake_is_reported_at_its_row(
    mistakes: list[Any], sheet: str, row: int, code: str
) -> None:
    assert any(p.sheet == sheet and p.row == row and p.code == code for p in mistakes)


def test_mistakes_cover_at_least_twelve_kinds(mistakes: list[Any]) -> None:
    assert len({p.code for p in mistakes}) >= 12
