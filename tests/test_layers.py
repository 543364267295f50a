"""The package's imports flow one way, top to bottom of LAYERS, and form no cycle (read with ast, nothing run)."""

import ast
from pathlib import Path

import dreamlift

PACKAGE = Path(dreamlift.__file__).parent

LAYERS = [
    {"cli"},
    {"studio"},
    {"report"},
    {"batch"},
    {"pipelines"},
    {"loading"},
    {"text3d", "video"},
    {"embedded"},
    {"guidance"},
    {"render"},
    {"scene"},
    {"priors"},
    {"training"},
    {"locks"},
    {"config", "io", "progress", "runtime", "timing"},
    {"errors"},
]
"""Top-level modules and packages of dreamlift, from the entry points down. A module may import its own package
and anything in a lower layer; nothing imports upwards or sideways."""

RANK = {name: rank for rank, layer in enumerate(LAYERS) for name in layer}


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def is_type_checking_block(node: ast.AST) -> bool:
    return isinstance(node, ast.If) and isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING"


def runtime_imports(tree: ast.AST) -> set[str]:
    """Every dreamlift module imported anywhere in ``tree`` (function bodies too), except under TYPE_CHECKING."""
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        if is_type_checking_block(node):
            return
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("dreamlift"):
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names if alias.name.startswith("dreamlift"))
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return found


def import_graph() -> dict[str, set[str]]:
    return {module_name(path): runtime_imports(ast.parse(path.read_text())) for path in PACKAGE.rglob("*.py")}


def top_level(module: str) -> str:
    return module.split(".")[1] if "." in module else ""


def test_every_top_level_module_has_a_layer():
    names = {top_level(module) for module in import_graph()} - {""}
    assert names <= set(RANK), f"modules without a layer: {sorted(names - set(RANK))}"


def test_imports_flow_down_the_layers():
    upward = []
    for module, imports in import_graph().items():
        if module == "dreamlift":
            continue
        for target in imports:
            source_top, target_top = top_level(module), top_level(target)
            if target == "dreamlift" or (source_top != target_top and RANK[target_top] <= RANK[source_top]):
                upward.append(f"{module} → {target}")
    assert not upward, "imports that do not flow down:\n" + "\n".join(sorted(upward))


def test_no_import_cycle():
    graph = import_graph()
    known = set(graph)
    done: set[str] = set()

    def visit(module: str, path: list[str]) -> list[str] | None:
        if module in path:
            return path[path.index(module) :] + [module]
        if module in done or module not in known:
            return None
        for target in sorted(graph[module]):
            cycle = visit(target, [*path, module])
            if cycle:
                return cycle
        done.add(module)
        return None

    for module in sorted(graph):
        cycle = visit(module, [])
        assert cycle is None, "import cycle: " + " → ".join(cycle)


def test_the_checks_catch_an_upward_import(tmp_path):
    tree = ast.parse(
        "from dreamlift.cli.common import slugify\nif TYPE_CHECKING:\n    from dreamlift.batch import jobs\n"
    )
    assert runtime_imports(tree) == {"dreamlift.cli.common"}
    assert RANK[top_level("dreamlift.cli.common")] < RANK[top_level("dreamlift.text3d.trainer")]
