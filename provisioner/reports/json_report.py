"""The JSON report: the result's ``to_dict()`` as it is, for scripts and for ``apply --plan``."""

from __future__ import annotations

import json

from provisioner.reports.base import Context, Report


def render(report: Report, context: Context) -> bytes:
    return (json.dumps(report, ensure_ascii=False, indent=2) + "\n").encode("utf-8")
