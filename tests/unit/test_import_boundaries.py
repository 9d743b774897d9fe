"""The simulators serve the demo and the tests; the product must not need them to run.

Only `erozgar-agent demo` uses them, and it imports them inside the functions that build the
simulated centre, so importing any product module leaves them unloaded.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PRODUCT = ("agent", "collectors", "exporters")
DEMO = Path("agent/demo.py")


def _is_simulators(module: str) -> bool:
    # any package named so, also a stale agent.simulators an old editable install still maps
    return "simulators" in module.split(".")


def _simulator_imports(tree: ast.Module) -> list[tuple[ast.stmt, bool]]:
    """Every import of the simulators package, and whether it runs when the module is imported
    (not inside a function, nor under `if TYPE_CHECKING:`)."""
    found: list[tuple[ast.stmt, bool]] = []

    def visit(node: ast.AST, at_import: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.Import):
                names = [alias.name for alias in child.names]
            elif isinstance(child, ast.ImportFrom):
                names = [("." * child.level) + (child.module or "")]
            else:
                names = []
            if any(_is_simulators(name.lstrip(".")) for name in names):
                found.append((child, at_import))
            deferred = isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda) or (
                isinstance(child, ast.If) and ast.unparse(child.test).endswith("TYPE_CHECKING")
            )
            visit(child, at_import and not deferred)

    visit(tree, True)
    return found


def test_only_the_demo_imports_the_simulators_and_only_when_it_runs() -> None:
    offenders = []
    for package in PRODUCT:
        for path in sorted((ROOT / package).rglob("*.py")):
            relative = path.relative_to(ROOT)
            for node, at_import in _simulator_imports(ast.parse(path.read_text(), str(path))):
                if relative != DEMO or at_import:
                    offenders.append(f"{relative}:{node.lineno}")
    assert offenders == []


def test_importing_every_product_module_leaves_the_simulators_unloaded() -> None:
    script = f"""
import importlib, json, pkgutil, sys
for package in {PRODUCT!r}:
    module = importlib.import_module(package)
    for info in pkgutil.walk_packages(module.__path__, package + "."):
        if not info.name.endswith(".__main__"):  # runs the CLI
            importlib.import_module(info.name)
print(json.dumps(list(sys.modules)))
"""
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, check=True
    )
    loaded = json.loads(done.stdout.splitlines()[-1])
    assert [name for name in loaded if _is_simulators(name)] == []


def test_the_scan_sees_a_simulator_import_at_module_level() -> None:
    tree = ast.parse(
        "from simulators.ups import SimulatedUps\n"
        "from .simulators import ups\n"
        "import simulators.snmp_router as r\n"
        "if TYPE_CHECKING:\n    from simulators import scenarios\n"
        "def f():\n    from simulators.ups import SimulatedUps\n"
    )
    at_import = [at_import for _, at_import in _simulator_imports(tree)]
    assert at_import == [True, True, True, False, False]
