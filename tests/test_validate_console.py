"""The console of `provisioner validate` shows from console_dict() what it shows from to_dict()."""

from __future__ import annotations

from pathlib import Path

import pytest

from provisioner.reports import render_console
from provisioner.templates import load_template
from provisioner.validation import validate_sheet

SAMPLES = Path(__file__).resolve().parent.parent / "sample_sheets"


@pytest.mark.parametrize("limit", [1, 20, 1000])
@pytest.mark.parametrize(
    "sheet", sorted(p.name for p in SAMPLES.iterdir() if p.suffix in (".xlsx", ".csv"))
)
def test_the_console_view_renders_like_the_full_report(sheet: str, limit: int) -> None:
    for name in ("default", "lorawan-meter"):
        report = validate_sheet(SAMPLES / sheet, load_template(name))
        secrets = {
            "secrets": report.records.secret_values(),
            "secret_columns": report.records.secret_columns,
        }
        full = report.to_dict()
        shown = report.console_dict(limit)
        assert {k: v for k, v in shown.items() if k != "rows"} == {
            k: v for k, v in full.items() if k != "rows"
        }
        assert len(shown["rows"]) == len(full["rows"])
        assert render_console(shown, limit=limit, color=True, **secrets) == render_console(
            full, limit=limit, color=True, **secrets
        )
