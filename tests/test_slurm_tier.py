"""The fleet tier (`pytest -m slurm`): deploy/'s recipes run for real. Slurm's prolog and health check on
a one-node cluster this file starts and stops (tests/slurm_cluster.py), the srun run through compare to
a Prometheus file, the Ansible playbook against this machine, the Kubernetes manifests against the API
schemas. The machine is a replayed recording (DEVCHECK_REPLAY): the recorded H100, healthy, or with 4
uncorrected ECC errors, as tests/test_check.py makes it.

Where Slurm, ansible-core, kubernetes-validate or prometheus-client is missing, a test skips and says
which; `.ci/run` installs them all and sets DEVCHECK_FLEET_TIER=required, which turns a skip into a failure.
"""

from __future__ import annotations

import importlib.util
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tests import slurm_cluster
from tests.recordings import GPU0, h100

pytestmark = pytest.mark.slurm
REPO = slurm_cluster.REPO
BIN = Path(sys.executable).parent
DEVCHECK = BIN / "devcheck"
BUDGET = "2s"  # the replayed check's steps take about 1 s here


def lacking(why: str) -> None:
    if os.environ.get("DEVCHECK_FLEET_TIER") == "required":
        pytest.fail(f"the fleet tier must not skip here: {why}")
    pytest.skip(why)


@pytest.fixture(scope="module")
def machines(tmp_path_factory) -> dict[str, Path]:
    """The replayed machines, as files: healthy, a GPU with ECC errors, and this CPU-only machine."""
    folder = tmp_path_factory.mktemp("machines")
    h100().save(folder / "healthy.json")
    h100(why="4 uncorrected ECC errors", nvml={("nvmlDeviceGetTotalEccErrors", GPU0, 1, 0): 4}).save(
        folder / "ecc.json"
    )
    return {"healthy": folder / "healthy.json", "ecc": folder / "ecc.json"}


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    if why := slurm_cluster.missing():
        lacking(why)
    if not DEVCHECK.exists():
        lacking(f"devcheck is not installed beside {sys.executable}")
    one = slurm_cluster.Cluster(tmp_path_factory.mktemp("slurm"))
    one.start()
    yield one
    one.stop()


@pytest.fixture
def node(cluster, tmp_path):
    cluster.reset()
    yield cluster
    cluster.reset()


def prolog(node, tmp_path, **values) -> Path:
    """The prolog's settings for the next job; the report folder does not exist yet."""
    reports = tmp_path / "missing" / "reports"
    node.settings("prolog", **{"DEVCHECK": DEVCHECK, "BUDGET": BUDGET, "REPORT_DIR": reports, **values})
    return reports


def test_a_healthy_node_runs_the_job_and_stays_idle(node, tmp_path, machines):
    reports = prolog(node, tmp_path, DEVCHECK_REPLAY=machines["healthy"])
    job = node.run("srun", "-N1", "/bin/echo", "the job ran")
    assert (job.returncode, job.stdout.strip()) == (0, "the job ran"), job.stderr
    assert node.settled() == "idle"
    # the folder was created; a fit node's report is kept as NODE-fit.json, replaced at each job
    (report,) = reports.iterdir()
    assert report.name == f"{node.node}-fit.json"
    doc = json.loads(report.read_text())
    assert doc["ok"] is True  # with a warning (the replay), which --strict would have failed


def test_a_failing_gpu_drains_the_node_naming_the_check_and_the_report(node, tmp_path, machines):
    reports = prolog(node, tmp_path, DEVCHECK_REPLAY=machines["ecc"])
    job = node.run("srun", "-N1", "/bin/echo", "the job ran")
    assert job.returncode == 182 and "Job prolog failed" in job.stderr, (job.returncode, job.stderr)
    assert "the job ran" not in job.stdout
    state, reason = node.state()
    (report,) = reports.glob(f"{node.node}-*.json")
    assert state == "drained" and reason == f"devcheck: gpu0.ecc; report {report}"
    assert json.loads(report.read_text())["ok"] is False


def test_a_batch_job_on_a_failing_node_is_requeued_held(node, tmp_path, machines):
    prolog(node, tmp_path, DEVCHECK_REPLAY=machines["ecc"])
    out = tmp_path / "job.out"
    job = node.run(
        "sbatch", "--parsable", f"--chdir={tmp_path}", f"--output={out}", "--wrap", "/bin/true"
    ).stdout.strip()
    node.wait_for(lambda: node.state()[0] == "drained", 30, "the prolog to drain the node")
    node.wait_for(lambda: "held" in held(node, job), 30, f"job {job} to be requeued held")
    shown = node.run("scontrol", "show", "job", job).stdout
    assert "JobState=PENDING Reason=launch_failed_requeued_held" in shown, shown
    assert "Error running slurm prolog" in out.read_text()
    assert node.state()[1].startswith("devcheck: gpu0.ecc; report ")


def held(node, job: str) -> str:
    return node.run("squeue", "-h", "-j", job, "-o", "%T %r").stdout.strip()


def test_a_gpu_node_whose_gpus_cannot_compute_is_drained(node, tmp_path):
    """GPU_NODE=1 (the default) passes --require-gpu: this machine has no GPU, so it is not fit."""
    prolog(node, tmp_path)
    assert node.run("srun", "-N1", "/bin/true").returncode == 182
    assert node.state()[1].startswith("devcheck: gpu.required; report ")


@pytest.mark.parametrize("broken", ["missing", "exit 2"])
def test_devcheck_that_cannot_run_lets_the_job_run_and_drains_only_when_told(node, tmp_path, machines, broken):
    """ON_ERROR=pass (the default): logged, the job runs, no drain. ON_ERROR=drain: drained, and the
    reason names no report, since none was written."""
    how = {"DEVCHECK": "/opt/nowhere/devcheck"} if broken == "missing" else {"DEVCHECK_REPLAY": tmp_path / "none.json"}
    prolog(node, tmp_path, **how)
    job = node.run("srun", "-N1", "/bin/echo", "the job ran")
    assert (job.returncode, job.stdout.strip(), node.settled()) == (0, "the job ran", "idle"), job.stderr
    reports = prolog(node, tmp_path, ON_ERROR="drain", **how)
    assert node.run("srun", "-N1", "/bin/true").returncode == 182
    state, reason = node.state()
    said = "/opt/nowhere/devcheck not found" if broken == "missing" else "exit 2: devcheck: error: DEVCHECK_REPLAY="
    assert state == "drained" and reason.startswith(f"devcheck could not run: {said}"), reason
    assert "report" not in reason and not list(reports.glob("*.json"))


def test_the_health_check_drains_a_failing_node_well_inside_slurmds_60_s(node, tmp_path, machines):
    """slurmd kills a HealthCheckProgram at 60 s, and a killed one drains nothing."""
    node.settings("health", DEVCHECK=str(DEVCHECK), DEVCHECK_REPLAY=machines["ecc"], REPORT_DIR=tmp_path / "reports",
                  GATE=REPO / "deploy" / "slurm" / "prolog.sh")  # fmt: skip
    done = node.dir / "health.done"
    node.wait_for(done.exists, node.interval + 60, "slurmd to run the health check")
    status, start, end = done.read_text().split()
    assert status == "1" and float(end) - float(start) < 45
    state, reason = node.state()
    assert state == "drained" and reason == f"devcheck: gpu0.ecc; report {tmp_path / 'reports' / node.node}-health.json"


def test_the_srun_fleet_run_ends_in_a_prometheus_file(cluster, node, tmp_path, machines):
    if importlib.util.find_spec("prometheus_client") is None:
        lacking("prometheus-client is not installed: pip install prometheus-client")
    from prometheus_client.parser import text_string_to_metric_families

    textfiles = tmp_path / "node-exporter"  # missing: the recipe creates it
    env = {**cluster.env, "DEVCHECK": DEVCHECK, "DEVCHECK_REPLAY": machines["ecc"], "NODES": "1", "BUDGET": BUDGET,
           "TEXTFILE_DIR": textfiles, "REPORTS": tmp_path / "reports" / "fleet.jsonl"}  # fmt: skip
    run = subprocess.run(["/bin/sh", REPO / "deploy/slurm/fleet.sh"], env={k: str(v) for k, v in env.items()},
                         capture_output=True, text=True, timeout=120)  # fmt: skip
    assert run.returncode == 1, run.stderr  # the node failed a check
    lines = (tmp_path / "reports" / "fleet.jsonl").read_text().splitlines()
    assert [json.loads(line)["host"] for line in lines] == [cluster.node]
    families = {f.name: f for f in text_string_to_metric_families((textfiles / "devcheck.prom").read_text())}
    failed = {s.labels.get("check"): s.value for s in families["devcheck_check_failed"].samples}
    assert failed.get("gpu0.ecc") == 1, failed
    assert node.settled() == "idle"  # no prolog set: the fleet run itself drains nothing


def test_the_ansible_playbook_reads_only_its_own_run(tmp_path, machines):
    playbook = BIN / "ansible-playbook"
    if not playbook.exists():
        lacking("ansible-core is not installed: pip install ansible-core")
    nodes, fetched = tmp_path / "node", tmp_path / "fetched"
    stale = nodes / "devcheck.json"  # a passing report an earlier run left
    nodes.mkdir()
    ok = subprocess.run([DEVCHECK, "check", "--budget", BUDGET, "--quiet", "--json-file", stale],
                        env={**os.environ, "DEVCHECK_REPLAY": str(machines["healthy"])})  # fmt: skip
    assert ok.returncode == 0

    def play(devcheck: Path, machine: Path) -> subprocess.CompletedProcess:
        args = {"devcheck_hosts": "localhost", "ansible_python_interpreter": sys.executable, "devcheck": devcheck,
                "devcheck_budget": BUDGET, "devcheck_report_dir": nodes, "devcheck_fetch_dir": fetched}  # fmt: skip
        command = [playbook, "-i", "localhost,", "-c", "local", REPO / "deploy/ansible/devcheck.yml"]
        for key, value in args.items():
            command += ["-e", f"{key}={value}"]
        env = {**os.environ, "DEVCHECK_REPLAY": str(machine), "ANSIBLE_NOCOLOR": "1"}
        return subprocess.run(command, env=env, capture_output=True, text=True, timeout=120, cwd=tmp_path)

    missing = play(tmp_path / "no-devcheck", machines["healthy"])
    assert missing.returncode != 0 and "failed=1" in missing.stdout, missing.stdout
    assert not fetched.exists()  # nothing fetched: the stale report was not taken for this run's

    failing = play(DEVCHECK, machines["ecc"])
    host = socket.gethostname()
    assert failing.returncode != 0 and f"compare.failed.{host}.gpu0.ecc" in failing.stdout, failing.stdout
    (run,) = fetched.iterdir()
    (report,) = run.iterdir()
    assert json.loads(report.read_text())["ok"] is False and report.name == "localhost.json"


@pytest.mark.parametrize("version", ["1.29.0", "1.37.0"])
def test_the_kubernetes_manifests_are_valid(version):
    validate = BIN / "kubernetes-validate"
    if not validate.exists():
        lacking("kubernetes-validate is not installed: pip install kubernetes-validate")
    manifests = sorted((REPO / "deploy" / "kubernetes").glob("*.yaml"))
    run = subprocess.run([validate, "--strict", "-k", version, *manifests], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stdout + run.stderr
    assert run.stdout.count("passed") == len(manifests) == 2, run.stdout


def test_the_kubernetes_job_gates_each_node_and_the_daemonset_holds_no_gpu():
    """Issue 22: the DaemonSet held 8 GPUs with `sleep infinity`, the Job retried a failing node 6 times,
    had no node name, no toleration for the GPU taint, no runtime class, and each pod pip-installed."""
    if importlib.util.find_spec("yaml") is None:
        lacking("PyYAML is not installed (kubernetes-validate brings it): pip install kubernetes-validate")
    import yaml

    folder = REPO / "deploy" / "kubernetes"
    job, daemonset = (yaml.safe_load((folder / name).read_text()) for name in ("job.yaml", "daemonset.yaml"))
    assert job["spec"]["backoffLimit"] == 0 and job["spec"]["activeDeadlineSeconds"] > 0
    for pod in (job["spec"]["template"]["spec"], daemonset["spec"]["template"]["spec"]):
        (container,) = pod["containers"]
        assert pod["runtimeClassName"] == "nvidia"
        assert {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"} in pod["tolerations"]
        host = next(e for e in container["env"] if e["name"] == "DEVCHECK_HOST")
        assert host["valueFrom"] == {"fieldRef": {"fieldPath": "spec.nodeName"}}
        command = " ".join(container["command"] + container["args"])
        assert "pip" not in command and "--require-gpu" in command and "sleep infinity" not in command
        assert container["image"].startswith("registry.example.com/devcheck:")
    assert "nvidia.com/gpu" not in json.dumps(daemonset["spec"]["template"]["spec"]["containers"][0]["resources"])
    assert "exit $status" in job["spec"]["template"]["spec"]["containers"][0]["args"][0]  # exit 2 fails the Job
