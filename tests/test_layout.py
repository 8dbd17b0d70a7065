"""The layout the README's Layout section promises: no import loops, features in packages.

Read with Python's own ``ast`` (nothing is imported): every ``import`` / ``from ... import`` of a
project module, at any depth of the file (imports inside functions count: they tie the modules
as much as top-level ones do), is an edge; a loop is a strongly connected group of more than one
module. A package's ``__init__`` importing its own submodules does not count as a loop with them.
"""

from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
ROOTS = ("routing", "training", "gateway", "ui")
#: The modules that are truly the core and may stay loose in routing/ (everything else is in a package).
ROUTING_CORE = {"settings", "errors", "pool", "categories", "router", "hub", "health", "budget", "service", "files"}
#: training/'s shared helpers (prompt text, outcome files, embeddings, the tiny test models); the rest is grouped.
TRAINING_CORE = {"text", "files", "embeddings", "tiny"}


def modules() -> dict[str, Path]:
    found = {}
    for root in ROOTS:
        for path in (REPO / root).rglob("*.py"):
            parts = list(path.relative_to(REPO).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            found[".".join(parts)] = path
    return found


def edges(mods: dict[str, Path]) -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {m: set() for m in mods}
    for name, path in mods.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            targets = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1] + ([base] if base else []))
                targets = [f"{base}.{a.name}" for a in node.names] + [base]
            for target in targets:
                while target and target not in mods:
                    target = target.rpartition(".")[0]
                if target and target != name and not (path.name == "__init__.py" and target.startswith(name + ".")):
                    graph[name].add(target)
    return graph


def loops(graph: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's strongly connected components of more than one module."""
    index, low, stack, on, out, counter = {}, {}, [], set(), [], [0]

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                on.discard(w)
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                out.append(sorted(group))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_no_import_loop_between_modules():
    assert loops(edges(modules())) == []


def test_the_loop_finder_finds_a_loop():
    assert loops({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_only_the_core_is_loose_in_routing_and_training():
    for root, core in (("routing", ROUTING_CORE), ("training", TRAINING_CORE)):
        loose = {p.stem for p in (REPO / root).glob("*.py") if p.stem != "__init__"}
        assert loose == core, root


def test_every_package_says_what_lives_there():
    for init in [*(REPO / "routing").rglob("__init__.py"), *(REPO / "training").rglob("__init__.py")]:
        tree = ast.parse(init.read_text(encoding="utf-8"))
        assert ast.get_docstring(tree), f"{init.relative_to(REPO)} has no docstring"


def test_the_request_path_needs_no_training_code():
    """The app's request path (routing/ but the evaluator's benchmark, and the gateway) never imports training/."""
    graph = edges(modules())
    offenders = {m: sorted(t for t in targets if t.startswith("training"))
                 for m, targets in graph.items()
                 if m.split(".")[0] in ("routing", "gateway") and m != "routing.evaluation.benchmark"}
    assert {m: t for m, t in offenders.items() if t} == {}
