"""Layering: the pure core (``algos``, ``nn``, ``preference``, ``data``, ``envs``) imports
no Ray, MLflow or FastAPI, the loop's actors no MLflow, and no rlhp module imports itself
back through others at import time (a cycle in the module-level import graph)."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "platform" / "rlhp"
CORE = ("rlhp.algos", "rlhp.nn", "rlhp.preference", "rlhp.data", "rlhp.envs")
BLOCKED = ("ray", "mlflow", "fastapi", "starlette", "uvicorn")

ACTORS = (
    "rlhp.actors.rollout_worker",
    "rlhp.actors.learner",
    "rlhp.actors.reward_trainer",
    "rlhp.actors.labeling",
    "rlhp.actors.segment_buffer",
)


def _imports_without(blocked: tuple[str, ...], modules: tuple[str, ...]) -> None:
    """Import ``modules`` in a fresh interpreter in which importing ``blocked`` fails."""
    script = f"""
import importlib, importlib.abc, sys
class Blocked(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name.split(".")[0] in {blocked!r}:
            raise ImportError(f"blocked import: {{name}}")
        return None
sys.meta_path.insert(0, Blocked())
for module in {modules!r}:
    importlib.import_module(module)
"""
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-2000:]


def test_the_pure_core_imports_without_ray_mlflow_or_fastapi():
    _imports_without(BLOCKED, CORE)


def test_the_loops_actors_import_without_mlflow():
    """Each actor process of a run imports its module; MLflow (a second of imports on
    this machine, times five actors) is the driver's alone."""
    _imports_without(("mlflow",), ACTORS)


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _top_level_imports(path: Path, modules: set[str]) -> set[str]:
    """rlhp modules imported when ``path`` is imported (module body only, not functions)."""
    found: set[str] = set()
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name in modules}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module in modules:
            found.add(node.module)
            found |= {f"{node.module}.{a.name}" for a in node.names} & modules
    return found


def _walk_acyclic(graph: dict[str, set[str]], what: str) -> set[str]:
    """Every node of ``graph``, visited depth-first; AssertionError naming the first cycle."""
    done: set[str] = set()

    def visit(node: str, stack: list[str]) -> None:
        if node in stack:
            cycle = [*stack[stack.index(node) :], node]
            raise AssertionError(f"{what}: " + " -> ".join(cycle))
        if node in done:
            return
        for dep in sorted(graph.get(node, ())):
            visit(dep, [*stack, node])
        done.add(node)

    for node in sorted(graph):
        visit(node, [])
    return done


def test_no_import_cycles_between_rlhp_modules():
    paths = {_module_name(p): p for p in PACKAGE.rglob("*.py")}
    modules = set(paths)
    graph = {m: _top_level_imports(p, modules) - {m} for m, p in paths.items()}
    done = _walk_acyclic(graph, "import cycle")
    assert len(done) == len(graph) > 50


def _all_imports(path: Path) -> set[str]:
    """rlhp modules ``path`` imports anywhere, function bodies included."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("rlhp.")}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found |= {node.module} if node.module.startswith("rlhp.") else set()
    return found


def _package(module: str) -> str:
    return ".".join(module.split(".")[:2])  # rlhp.runtime.loop -> rlhp.runtime


def test_no_cycles_between_rlhp_packages_even_through_function_imports():
    """A function-local import hides a cycle from import time, not from the design: the
    packages (and top-level modules) of rlhp form a DAG."""
    graph: dict[str, set[str]] = {}
    for path in PACKAGE.rglob("*.py"):
        here = _package(_module_name(path))
        deps = {_package(m) for m in _all_imports(path)} - {here, "rlhp"}
        graph.setdefault(here, set()).update(deps)
    done = _walk_acyclic(graph, "package cycle")
    assert {"rlhp.runtime", "rlhp.actors", "rlhp.config", "rlhp.cli"} <= done
