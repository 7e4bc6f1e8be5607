"""The module map of the README holds: the stages that talk to the platform do not import
one another (apply may use plan), and every run that writes goes through the runner."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "provisioner"
STAGES = ("plan", "apply", "verify", "export", "undo")
ALLOWED = {("apply", "plan")}


def imported(module: str) -> set[str]:
    """The provisioner modules ``module`` imports, anywhere in it (also inside functions)."""
    tree = ast.parse((PACKAGE / f"{module}.py").read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            if node.module == "provisioner":
                names.update(alias.name for alias in node.names)
            elif node.module.startswith("provisioner."):
                names.add(node.module.split(".")[1])
        elif isinstance(node, ast.Import):
            names.update(
                a.name.split(".")[1] for a in node.names if a.name.startswith("provisioner.")
            )
    return names


def test_no_stage_imports_another_but_apply_uses_plan() -> None:
    crossings = {
        (stage, other)
        for stage in STAGES
        for other in imported(stage) & set(STAGES)
        if other != stage
    }
    assert crossings <= ALLOWED, sorted(crossings - ALLOWED)


def test_writes_to_the_platform_happen_only_on_the_runner() -> None:
    """apply and undo send their writes as the runner's requests: no pool of their own."""
    for stage in ("apply", "undo", "verify"):
        text = (PACKAGE / f"{stage}.py").read_text(encoding="utf-8")
        assert "ThreadPoolExecutor" not in text, stage
    assert "runner" in imported("apply") and "runner" in imported("undo")
