"""The console of `provisioner validate` shows from the rows with problems (``listed()``)
what it shows from every row (``to_dict()``), and a streamed validation, which holds no
row without a problem, finds what one that holds every row finds."""

from __future__ import annotations

from pathlib import Path

import pytest

from provisioner.reports import render_console
from provisioner.templates import load_template
from provisioner.validation import validate_sheet, validate_stream

SAMPLES = Path(__file__).resolve().parent.parent / "sample_sheets"


@pytest.mark.parametrize("limit", [1, 20, 1000])
@pytest.mark.parametrize(
    "sheet", sorted(p.name for p in SAMPLES.iterdir() if p.suffix in (".xlsx", ".csv"))
)
def test_the_console_view_renders_like_the_full_report(sheet: str, limit: int) -> None:
    for name in ("default", "lorawan-meter"):
        report = validate_sheet(SAMPLES / sheet, load_template(name))
        streamed = validate_stream(SAMPLES / sheet, load_template(name))
        secrets = {
            "secrets": report.records.secrets(),
            "secret_columns": report.records.secret_columns,
        }
        assert sorted(streamed.records.secrets()) == sorted(set(secrets["secrets"]))
        full = report.to_dict()
        shown = streamed.listed()
        assert {k: v for k, v in shown.items() if k not in ("rows", "made_at")} == {
            k: v for k, v in full.items() if k not in ("rows", "made_at")
        }
        assert shown["rows"] == [row for row in full["rows"] if row["errors"] or row["warnings"]]
        shown["made_at"] = full["made_at"]
        assert render_console(shown, limit=limit, color=True, **secrets) == render_console(
            full, limit=limit, color=True, **secrets
        )
