"""The layout holds (the README's layers, issue 11's limits): read from the source, so it stays true."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1] / "devcheck"
MODULES = sorted(ROOT.rglob("*.py"))


def imports(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            found.add(node.module)
    return found


def where(path: Path) -> str:
    return path.relative_to(ROOT.parent).as_posix()


@pytest.mark.parametrize("path", MODULES, ids=where)
def test_modules_and_functions_stay_small(path):
    tree = ast.parse(path.read_text())
    assert len(path.read_text().splitlines()) <= 400
    long = [
        f"{node.name}: {node.end_lineno - node.lineno + 1} lines"
        for node in ast.walk(tree)
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.end_lineno - node.lineno + 1 > 60
    ]
    assert not long


@pytest.mark.parametrize("path", MODULES, ids=where)
def test_layers_point_down(path):
    name, used = where(path), imports(path)
    heavy = {m for m in used if m.split(".")[0] in ("cupy", "cupyx", "pynvml")}
    if heavy:  # the hardware seam, and the engine's backend (the engine is usable on its own)
        assert name.startswith("devcheck/machine/replay/") or name == "devcheck/engine/backend.py", heavy
    if name.startswith("devcheck/engine/"):
        assert all(m.startswith("devcheck.engine") for m in used if m.startswith("devcheck")), used
    if not name.startswith("devcheck/render/") and name != "devcheck/cli.py":
        assert not {m for m in used if m.split(".")[0] in ("rich", "typer")}, "only the renderer and the CLI"
    if name.startswith("devcheck/machine/"):
        assert not {m for m in used if m.startswith(("devcheck.commands", "devcheck.render", "devcheck.cli"))}
    # machine/ is three packages, each importing only those below it: model -> probes -> replay
    below = {"model": ("probes", "replay"), "probes": ("replay",), "replay": ()}
    for part, allowed in below.items():
        if name.startswith(f"devcheck/machine/{part}/"):
            others = {m.split(".")[2] for m in used if m.startswith("devcheck.machine.")} - {part}
            assert others <= set(allowed), f"{name} imports machine.{others - set(allowed)}"


def test_no_file_cites_a_document_outside_the_repository():
    """Notes beside a checkout (a design document, a shared fixtures or research folder) are not in a
    clone: what a file cites must be in the repository, so a newcomer can follow it."""
    outside = ("DESIGN" + ".md", "shared" + "/fixtures", "shared" + "/research", "../" + "shared")
    repo = ROOT.parent
    texts = [p for ext in ("py", "md", "sh", "toml", "yml", "yaml") for p in repo.rglob(f"*.{ext}")]
    texts = [p for p in texts if not {".venv", ".git", "build"} & set(p.relative_to(repo).parts)]
    cited = [
        f"{p.relative_to(repo)}: {word}" for p in texts for word in outside if word in p.read_text(errors="replace")
    ]
    assert len(texts) > 100 and not cited
