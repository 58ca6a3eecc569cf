"""The layers: each project app imports only the apps below it (their order in ``INSTALLED_APPS``,
bottom layer first), no two files import each other round a circle, and no template includes or
extends a template of an app above its own.

Imports are read from the source with ``ast`` (function-level imports too: a lazy import up the
layers is still an import up the layers); ``if TYPE_CHECKING:`` blocks are skipped.
"""

from __future__ import annotations

import ast
import re
from functools import cache
from pathlib import Path

from django.conf import settings

from core.registry import project_app_configs

ROOT = Path(settings.BASE_DIR)


@cache
def layers() -> dict[str, int]:
    """App label -> its layer (0 = the bottom app)."""
    return {config.label: rank for rank, config in enumerate(project_app_configs())}


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def resolve(name: str) -> str:
    """The project module a dotted name refers to (a module, or the package holding a name)."""
    while name:
        base = ROOT / Path(*name.split("."))
        if base.with_suffix(".py").is_file() or (base / "__init__.py").is_file():
            return name
        name = name.rpartition(".")[0]
    return ""


def _is_type_checking(node: ast.AST) -> bool:
    return isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)


def _import_nodes(tree: ast.AST):
    stack = [tree]
    while stack:
        node = stack.pop()
        if _is_type_checking(node):
            continue
        if isinstance(node, ast.Import | ast.ImportFrom):
            yield node
        stack.extend(ast.iter_child_nodes(node))


def _targets(node, module: str, is_package: bool) -> list[str]:
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    if node.level:  # relative: from the module's package
        package = module if is_package else module.rpartition(".")[0]
        for _ in range(node.level - 1):
            package = package.rpartition(".")[0]
        base = f"{package}.{node.module}" if node.module else package
    else:
        base = node.module or ""
    return [f"{base}.{alias.name}" for alias in node.names] + [base]


@cache
def project_modules() -> dict[str, set[str]]:
    """Every module of the project apps -> the project modules it imports."""
    graph: dict[str, set[str]] = {}
    for label in layers():
        for path in (ROOT / label).rglob("*.py"):
            module = module_name(path)
            tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
            imported = set()
            for node in _import_nodes(tree):
                for target in _targets(node, module, path.name == "__init__.py"):
                    resolved = resolve(target)
                    if resolved and resolved.split(".")[0] in layers() and resolved != module:
                        imported.add(resolved)
            graph[module] = imported
    return graph


def test_every_project_app_is_checked():
    assert list(layers()) == [
        "core",
        "accounts",
        "subjects",
        "eligibility",
        "randomization",
        "adverse_events",
        "treatment",
        "efficacy",
        "survival",
        "queries",
        "monitoring",
        "dashboard",
        "exports",
    ]
    assert "core.access" in project_modules() and "eligibility.views" in project_modules()


def test_apps_import_downward_only():
    upward = sorted(
        f"{module} imports {target}"
        for module, targets in project_modules().items()
        for target in targets
        if layers()[target.split(".")[0]] > layers()[module.split(".")[0]]
    )
    assert upward == []


def test_the_bottom_app_imports_no_other_project_app():
    assert {
        target.split(".")[0]
        for module, targets in project_modules().items()
        if module.startswith("core")
        for target in targets
    } <= {"core"}


def _cycle_from(start: str, graph: dict[str, set[str]]) -> list[str] | None:
    path, on_path, done = [], set(), set()

    def visit(node):
        path.append(node)
        on_path.add(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt in on_path:
                return path[path.index(nxt) :] + [nxt]
            if nxt not in done:
                found = visit(nxt)
                if found:
                    return found
        on_path.discard(path.pop())
        done.add(node)
        return None

    return visit(start)


def test_no_circle_between_files():
    graph = project_modules()
    for module in sorted(graph):
        # A package's __init__ importing its own submodules is how a package re-exports.
        edges = {m: {t for t in ts if not t.startswith(m + ".")} for m, ts in graph.items()}
        cycle = _cycle_from(module, edges)
        assert cycle is None, " -> ".join(cycle)


def test_the_cycle_finder_finds_a_circle():
    assert _cycle_from("a", {"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle_from("a", {"a": {"b"}, "b": set()}) is None


TEMPLATE_TAG = re.compile(r"{%\s*(?:include|extends)\s+[\"']([^\"']+)[\"']")


def _template_owner(name: str) -> str | None:
    for label in layers():
        if (ROOT / label / "templates" / name).is_file():
            return label
    return None


def test_no_template_uses_a_template_of_an_app_above():
    upward = []
    for label in layers():
        for path in (ROOT / label / "templates").rglob("*.html"):
            for used in TEMPLATE_TAG.findall(path.read_text(encoding="utf-8")):
                owner = _template_owner(used)  # None: Django's or a library's
                if owner is not None and layers()[owner] > layers()[label]:
                    upward.append(f"{path.relative_to(ROOT)} uses {used} ({owner})")
    assert upward == []
