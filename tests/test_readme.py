from pathlib import Path

ROOT = Path(__file__).parent.parent


def test_ci_runs_the_readme_test_command():
    readme_lines = (ROOT / "README.md").read_text().splitlines()
    test_command = readme_lines[readme_lines.index("# the tests (CPU, no network; what .ci/run runs)") + 1]
    assert test_command in (ROOT / ".ci" / "run").read_text().splitlines()
