"""The package's shape, read from its source (nothing run but a fresh interpreter for the import test): the CLI
goes through the pipelines, no code outside the scene factory asks which scene kind it holds, files stay short,
and reading a config needs no mesh library."""

import ast
import subprocess
import sys

from test_layers import PACKAGE, import_graph

CLI_MAY_IMPORT = {"dreamlift.cli", "dreamlift.pipelines", "dreamlift.config", "dreamlift.errors", "dreamlift.io"}
"""What the command-line modules import: the pipelines and the plumbing of commands; ``text3d batch`` and
``text3d report`` are entry points of their own: they call the batch runner (holding the batch folder) and the
report."""
ENTRY_POINTS = {
    "dreamlift.cli.batch": {"dreamlift.batch", "dreamlift.report", "dreamlift.locks"},
    "dreamlift.cli.report": {"dreamlift.report"},
    "dreamlift.cli.studio": {"dreamlift.studio"},
}
SCENE_FACTORY = PACKAGE / "text3d" / "scene_kinds.py"
SCENE_CLASSES = {"NeRFScene", "GaussianScene", "MeshScene"}
MAX_LINES = 330


def package_of(module: str, allowed: set[str]) -> bool:
    return any(module == name or module.startswith(name + ".") for name in allowed)


def test_the_cli_imports_only_the_pipelines_config_errors_and_io():
    wrong = []
    for module, imports in import_graph().items():
        if module.startswith("dreamlift.cli"):
            allowed = CLI_MAY_IMPORT | ENTRY_POINTS.get(module, set())
            wrong += [f"{module} → {target}" for target in imports if not package_of(target, allowed)]
    assert wrong == []


def scene_kind_questions(path) -> list[str]:
    """``isinstance(x, <scene class>)`` calls and comparisons of a ``scene`` name or attribute with a string."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "isinstance" and len(node.args) == 2:
            names = {n.id for n in ast.walk(node.args[1]) if isinstance(n, ast.Name)}
            names |= {n.attr for n in ast.walk(node.args[1]) if isinstance(n, ast.Attribute)}
            if names & SCENE_CLASSES:
                found.append(f"{path.name}:{node.lineno} isinstance")
        if isinstance(node, ast.Compare) and any(isinstance(c, ast.Constant) for c in node.comparators):
            left = node.left
            name = left.attr if isinstance(left, ast.Attribute) else getattr(left, "id", None)
            if name == "scene":
                found.append(f"{path.name}:{node.lineno} scene ==")
    return found


def test_nothing_outside_the_scene_factory_asks_which_scene_kind_it_holds():
    found = [q for path in PACKAGE.rglob("*.py") if path != SCENE_FACTORY for q in scene_kind_questions(path)]
    assert found == []


def test_the_question_finder_finds_both_kinds_of_question(tmp_path):
    source = tmp_path / "asks.py"
    source.write_text('if isinstance(s, NeRFScene) or config.scene == "gaussians":\n    pass\n')
    assert scene_kind_questions(source) == ["asks.py:1 isinstance", "asks.py:1 scene =="]


def test_no_source_file_is_over_330_lines():
    long = {
        str(p.relative_to(PACKAGE)): n
        for p in PACKAGE.rglob("*.py")
        if (n := len(p.read_text().splitlines())) > MAX_LINES
    }
    assert long == {}


def test_reading_a_config_imports_no_mesh_library():
    code = (
        "import sys; from dreamlift.text3d.config import Text3DConfig; Text3DConfig(); "
        "print(' '.join(sorted(m for m in ('trimesh', 'scipy', 'skimage', 'xatlas') if m in sys.modules)))"
    )
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert loaded.strip() == ""


def test_import_dreamlift_is_light_and_names_the_pipelines():
    code = "import sys, dreamlift; print(' '.join(dreamlift.__all__)); print('torch' in sys.modules)"
    names, torch_loaded = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.split("\n")[:2]
    assert {"TextTo3DPipeline", "TextToVideoPipeline", "TextToImagePipeline"} <= set(names.split())
    assert torch_loaded == "False"
