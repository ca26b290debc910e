"""deploy/'s recipes, read as an admin pastes them: the docs show each file whole and unchanged, nothing
installs devcheck by a bare name from a package index (the index's "devcheck" is another project), and
each script is plain sh that gates GPU nodes with --require-gpu and never with --strict. What runs them
on a real Slurm, Ansible and the Kubernetes schemas is the fleet tier, tests/test_slurm_tier.py."""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

REPO = Path(__file__).parents[1]
DEPLOY = REPO / "deploy"
RECIPES = sorted(p for p in DEPLOY.rglob("*") if p.is_file())
SCRIPTS = [p for p in RECIPES if p.suffix == ".sh"]
INCLUDE = re.compile(r"<!-- file: (\S+) -->\n```[a-z]*\n(.*?)```\n", re.S)
INSTALL = re.compile(r"\b(?:pip3?|pipx|uv pip)\s+install\b([^\n;&|]*)")
OURS = re.compile(r"(devcheck|devcheck-gpu)(\[[^\]]*\])?([<>=!~].*)?")


def included() -> dict[str, list[str]]:
    shown: dict[str, list[str]] = {}
    for doc in sorted((REPO / "docs").glob("*.md")):
        for name, body in INCLUDE.findall(doc.read_text()):
            shown.setdefault(name, []).append(body)
    return shown


def bare_installs(text: str) -> list[str]:
    """Every `pip install` argument that names devcheck as a package to fetch from an index."""
    found = []
    for match in INSTALL.finditer(text):
        try:
            words = shlex.split(match.group(1), comments=True)
        except ValueError:
            words = match.group(1).split()
        found += [w for w in words if not w.startswith("-") and OURS.fullmatch(w)]
    return found


def test_the_docs_show_every_recipe_byte_for_byte():
    shown = included()
    assert sorted(shown) == [p.relative_to(REPO).as_posix() for p in RECIPES]
    for name, bodies in shown.items():
        assert all(body == (REPO / name).read_text() for body in bodies), name


@pytest.mark.parametrize(
    "line",
    [
        "pip install 'devcheck[cuda12]' && devcheck check",
        'python -m pip install "devcheck"',
        "pip install -q devcheck==0.1.0",
        "pipx install devcheck-gpu",
    ],
)
def test_a_bare_name_install_is_found(line):
    assert bare_installs(line)


@pytest.mark.parametrize(
    "line",
    [
        'pip install ".[cuda12]"',
        'pip install "devcheck-gpu[cuda12] @ git+https://example.org/devcheck.git@v0.1.0"',
        "pip install /srv/wheels/devcheck_gpu-0.1.0-py3-none-any.whl",
        "pip install cupy-cuda12x nvidia-ml-py",
    ],
)
def test_a_pinned_install_is_not(line):
    assert not bare_installs(line)


def test_nothing_installs_devcheck_by_a_bare_name_from_an_index():
    places = [REPO / "README.md", REPO / "action.yml", REPO / ".ci" / "run", *RECIPES]
    places += [*(REPO / "docs").glob("*.md"), *(REPO / "scripts").iterdir(), *(REPO / "benchmarks").glob("*.sh")]
    places += (REPO / ".github").rglob("*.yml")
    found = {p.relative_to(REPO).as_posix(): bare_installs(p.read_text()) for p in places if p.is_file()}
    assert not {where: words for where, words in found.items() if words}


def test_the_distribution_has_a_name_of_its_own_and_the_command_stays_devcheck():
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    assert project["name"] == "devcheck-gpu"  # "devcheck" on the package index is an unrelated project
    assert project["scripts"] == {"devcheck": "devcheck.cli:main"}


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.relative_to(DEPLOY).as_posix())
def test_each_script_is_plain_sh_that_requires_a_gpu_and_is_never_strict(script):
    text = script.read_text()
    assert subprocess.run(["/bin/sh", "-n", script]).returncode == 0
    assert "--strict" not in text.replace("Never --strict", "")
    if script.name != "healthcheck.sh":  # it runs the prolog
        assert re.search(r"^GPU_NODE=\$\{GPU_NODE:-1\}", text, re.M) and "--require-gpu" in text


def test_the_health_check_ends_well_inside_slurmds_60_s():
    """slurmd kills a HealthCheckProgram at 60 s and a killed run drains nothing: devcheck is stopped
    (TIMEOUT, then 5 s more for the kill) with time left to drain."""
    text = (DEPLOY / "slurm" / "healthcheck.sh").read_text()
    budget = int(re.search(r"BUDGET=\$\{BUDGET:-(\d+)s\}", text).group(1))
    timeout = int(re.search(r"TIMEOUT=\$\{TIMEOUT:-(\d+)\}", text).group(1))
    assert budget < timeout and timeout + 5 < 55


def test_the_pdsh_wrapper_runs_over_ssh_with_full_paths(tmp_path):
    """pdsh is replaced by what ssh does with the command it is given: run it with the system PATH only
    (a non-interactive ssh's), here. Debian's pdsh would use rsh without PDSH_RCMD_TYPE=ssh."""
    pdsh = tmp_path / "pdsh"
    pdsh.write_text(
        '#!/bin/sh\nprintf "%s\\n" "$PDSH_RCMD_TYPE" "$@" > "$ARGS"\n'
        'for word; do last=$word; done\nexec env -i PATH=/usr/bin:/bin /bin/sh -c "$last"\n'
    )
    pdsh.chmod(0o755)
    devcheck = Path(sys.executable).parent / "devcheck"
    env = {"PATH": "/usr/bin:/bin", "PDSH": str(pdsh), "ARGS": str(tmp_path / "args"), "DEVCHECK": str(devcheck),
           "BUDGET": "1s", "NODES": "gpu[01-02]", "REPORTS": str(tmp_path / "fleet.jsonl")}  # fmt: skip
    run = subprocess.run(["/bin/sh", DEPLOY / "pdsh" / "fleet.sh"], env=env, capture_output=True, text=True)
    rcmd, *flags, nodes, remote = (tmp_path / "args").read_text().split("\n", 7)
    assert (rcmd, flags, nodes) == ("ssh", ["-S", "-N", "-f", "64", "-w"], "gpu[01-02]")
    assert remote.startswith(f"out=$({devcheck} check --budget 1s --require-gpu --json)")
    # this machine has no GPU: the node fails --require-gpu (1), which is not "could not run" (2)
    assert run.returncode == 1, run.stderr
    (line,) = (tmp_path / "fleet.jsonl").read_text().splitlines()
    assert [c["id"] for c in json.loads(line)["checks"] if c["status"] == "fail"] == ["gpu.required"]


def test_the_pdsh_wrapper_says_when_devcheck_could_not_run(tmp_path):
    pdsh = tmp_path / "pdsh"
    pdsh.write_text('#!/bin/sh\nfor word; do last=$word; done\nexec env -i PATH=/usr/bin:/bin /bin/sh -c "$last"\n')
    pdsh.chmod(0o755)
    env = {**os.environ, "PDSH": str(pdsh), "DEVCHECK": "/opt/nowhere/devcheck", "REPORTS": str(tmp_path / "r.jsonl")}
    env["PYTHON"] = sys.executable
    run = subprocess.run(["/bin/sh", DEPLOY / "pdsh" / "fleet.sh"], env=env, capture_output=True, text=True)
    assert run.returncode == 2 and "devcheck could not run on " in run.stderr, run.stderr


def test_the_action_names_its_artifact_per_runner_and_runs_without_setup_python():
    """Issue 22: the artifact was devcheck-check-JOB-INDEX, which two runners of one fleet, or two uses in
    one job, share (upload-artifact v4 refuses the second); setup-python has no RHEL or Rocky builds."""
    action = (REPO / "action.yml").read_text()
    (name,) = re.findall(r"^\s+name: (\$\{\{.*artifact-name.*\}\})$", action, re.M)
    assert "runner.name" in name and "strategy.job-index" in name and "github.job" in name
    assert "if: inputs.python == ''" in action and '"${PYTHON:-python}" -m venv' in action
