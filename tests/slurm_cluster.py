"""A real one-node Slurm cluster for the fleet tier (`pytest -m slurm`): munged, slurmctld and slurmd on
this machine, as root, each stopped by the PID it wrote. Debian's slurm-wlm and munge:
`apt-get install -y slurm-wlm munge`. The node is this machine's `hostname -s`, as slurmd names itself.

The Prolog and the HealthCheckProgram in slurm.conf are small wrappers that read a test's settings
(`prolog.env`, `health.env`: shell variable lines) and then run the recipe in deploy/slurm unchanged,
in the environment slurmd gives them (no PATH), with SLURM_CONF naming this cluster's slurm.conf for
scontrol (a real node's is /etc/slurm/slurm.conf). No settings file: the wrapper does nothing, exit 0.
The health settings are used by one run only (renamed when it starts), since slurmd repeats it.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

REPO = Path(__file__).parents[1]
DAEMONS = ("slurmctld", "slurmd", "munged")

CONF = """\
ClusterName=devcheck
SlurmctldHost=localhost
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
MpiDefault=none
ReturnToService=2
StateSaveLocation={dir}/state
SlurmdSpoolDir={dir}/spool
SlurmctldPidFile={dir}/slurmctld.pid
SlurmdPidFile={dir}/slurmd.pid
SlurmctldLogFile={dir}/slurmctld.log
SlurmdLogFile={dir}/slurmd.log
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
JobAcctGatherType=jobacct_gather/none
Prolog={dir}/prolog
HealthCheckProgram={dir}/health
HealthCheckInterval={interval}
NodeName={node} NodeAddr=127.0.0.1 CPUs={cpus} RealMemory=1000 State=UNKNOWN
PartitionName=debug Nodes={node} Default=YES MaxTime=INFINITE State=UP
"""

PROLOG = """\
#!/bin/sh
[ -f {dir}/prolog.env ] || exit 0
set -a; SLURM_CONF={dir}/slurm.conf; . {dir}/prolog.env; set +a
exec /bin/sh {repo}/deploy/slurm/prolog.sh
"""

HEALTH = """\
#!/bin/sh
[ -f {dir}/health.env ] || exit 0
/bin/mv {dir}/health.env {dir}/health.running
set -a; SLURM_CONF={dir}/slurm.conf; . {dir}/health.running; set +a
start=$(/bin/date +%s.%N)
/bin/sh {repo}/deploy/slurm/healthcheck.sh
status=$?
echo "$status $start $(/bin/date +%s.%N)" > {dir}/health.tmp && /bin/mv {dir}/health.tmp {dir}/health.done
"""


def missing() -> str:
    """Why this machine cannot run the tier, or ""."""
    absent = [p for p in ("slurmctld", "slurmd", "munged", "sinfo") if not shutil.which(p, path="/usr/sbin:/usr/bin")]
    if absent:
        return f"Slurm is not installed ({', '.join(absent)} missing): apt-get install -y slurm-wlm munge"
    if os.geteuid() != 0:
        return "slurmd runs jobs and prologs as root: run the Slurm tier as root"
    return ""


class Cluster:
    def __init__(self, folder: Path, interval: int = 3):
        self.dir, self.node = folder, socket.gethostname().split(".")[0]
        self.env = {**os.environ, "SLURM_CONF": str(folder / "slurm.conf")}
        self.interval, self.started_munge = interval, False
        for sub in ("state", "spool"):
            (folder / sub).mkdir(parents=True, exist_ok=True)
        values = {"dir": folder, "repo": REPO, "node": self.node, "cpus": os.cpu_count(), "interval": interval}
        (folder / "slurm.conf").write_text(CONF.format(**values))
        for name, text in (("prolog", PROLOG), ("health", HEALTH)):
            (folder / name).write_text(text.format(**values))
            (folder / name).chmod(0o755)

    def run(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess:
        return subprocess.run(args, env=self.env, capture_output=True, text=True, timeout=timeout)

    def start(self) -> None:
        if not self._munge_works():
            Path("/run/munge").mkdir(exist_ok=True)
            shutil.chown("/run/munge", "munge", "munge")
            subprocess.run(["su", "-s", "/bin/sh", "munge", "-c", "/usr/sbin/munged"], check=True, timeout=30)
            self.started_munge = True
            assert self._munge_works(), "munged started but munge -n | unmunge fails"
        subprocess.run(["/usr/sbin/slurmctld"], env=self.env, check=True, timeout=30)
        subprocess.run(["/usr/sbin/slurmd"], env=self.env, check=True, timeout=30)
        self.wait_for(lambda: self.state()[0] == "idle", 30, "the node to become idle")

    def stop(self) -> None:
        pids = [self.dir / "slurmd.pid", self.dir / "slurmctld.pid"]
        if self.started_munge:
            pids.append(Path("/run/munge/munged.pid"))
        for pid_file in pids:
            if pid_file.exists():
                pid = int(pid_file.read_text().split()[0])
                try:
                    os.kill(pid, signal.SIGTERM)
                except ProcessLookupError:
                    continue
                self.wait_for(lambda pid=pid: not Path(f"/proc/{pid}").exists(), 20, f"{pid_file.name} to end")

    def _munge_works(self) -> bool:
        munge = subprocess.run(["munge", "-n"], capture_output=True, timeout=10)
        return (
            munge.returncode == 0
            and subprocess.run(["unmunge"], input=munge.stdout, capture_output=True).returncode == 0
        )

    def state(self) -> tuple[str, str]:
        """The node's state and reason, as `sinfo` prints them (`idle`, `drained`, `drng`...)."""
        out = self.run("sinfo", "-h", "-n", self.node, "-o", "%T|%E").stdout.strip()
        state, _, reason = out.partition("|")
        return state, reason

    def settled(self) -> str:
        """The node's state once a finished job's clean-up is over: `completing` can last a moment after
        srun returns (seen here once in a dozen runs), and a drain or an idle node comes after it."""
        self.wait_for(lambda: self.state()[0] != "completing", 10, "the job's clean-up to end")
        return self.state()[0]

    def settings(self, name: str, **values: str) -> None:
        """The next prolog's (name "prolog") or health check's ("health") variables."""
        text = "".join(f"{key}='{value}'\n" for key, value in values.items())
        (self.dir / f"{name}.tmp").write_text(text)
        (self.dir / f"{name}.tmp").rename(self.dir / f"{name}.env")

    def reset(self) -> None:
        """Back to an idle node with no job and no settings, as each test starts."""
        for name in ("prolog.env", "health.env", "health.done"):
            (self.dir / name).unlink(missing_ok=True)
        jobs = self.run("squeue", "-h", "-o", "%i").stdout.split()
        if jobs:
            self.run("scancel", *jobs)
        self.wait_for(lambda: not self.run("squeue", "-h", "-o", "%i").stdout.split(), 30, "the jobs to end")
        if self.state()[0] != "idle":
            self.run("scontrol", "update", f"nodename={self.node}", "state=resume")
        self.wait_for(lambda: self.state()[0] == "idle", 30, "the node to become idle again")

    def wait_for(self, ready, seconds: float, what: str) -> None:
        deadline = time.monotonic() + seconds
        while not ready():
            if time.monotonic() > deadline:
                log = "\n".join(
                    (self.dir / f).read_text()[-2000:]
                    for f in ("slurmctld.log", "slurmd.log")
                    if (self.dir / f).exists()
                )
                raise AssertionError(f"waited {seconds} s for {what}; node {self.state()}\n{log}")
            time.sleep(0.2)
