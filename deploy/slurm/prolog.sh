#!/bin/sh
# Slurm Prolog (slurm.conf: Prolog=/etc/slurm/prolog.d/*): drains a node that is not fit before a job
# lands on it. slurmd runs it as root with NO PATH, so every program is named by its full path.
#   exit 1 from devcheck (a check failed): drain, reason "devcheck: <failed checks>; report <file>", exit 1
#     (Slurm then requeues a batch job held, launch_failed_requeued_held; srun fails, rc 182)
#   devcheck could not run (missing, broken, exit 2, killed by TIMEOUT): log one line and let the job
#     run (ON_ERROR=pass), or drain with reason "devcheck could not run: ..." and exit 1 (ON_ERROR=drain)
# Never --strict: a warning (CPUs busy with another job's work) must not drain a node.
DEVCHECK=${DEVCHECK:-/opt/devcheck/bin/devcheck}   # the venv's devcheck, by its full path
PYTHON=${PYTHON:-${DEVCHECK%/*}/python3}           # the same venv's Python, reads the report
BUDGET=${BUDGET:-10s}                              # every job start pays it
TIMEOUT=${TIMEOUT:-60}                             # seconds before devcheck is stopped
GPU_NODE=${GPU_NODE:-1}                            # 1: --require-gpu (a GPU that cannot compute fails)
REPORT_DIR=${REPORT_DIR:-/var/log/devcheck}        # created if missing
ON_ERROR=${ON_ERROR:-pass}                         # pass or drain, when devcheck could not run
SCONTROL=${SCONTROL:-/usr/bin/scontrol}
NODE=${SLURMD_NODENAME:-$(/bin/hostname -s)}

say() { echo "devcheck prolog on $NODE: $*" >&2; [ -x /usr/bin/logger ] && /usr/bin/logger -t devcheck "$*"; return 0; }
drain() { "$SCONTROL" update nodename="$NODE" state=drain reason="$1"; }
could_not_run() {
  say "devcheck could not run: $1"
  [ "$ON_ERROR" = drain ] || exit 0
  drain "devcheck could not run: $1"
  exit 1
}

[ -x "$DEVCHECK" ] || could_not_run "$DEVCHECK not found"
/bin/mkdir -p "$REPORT_DIR" || could_not_run "cannot create $REPORT_DIR"
report=$REPORT_DIR/$NODE-${SLURM_JOB_ID:-health}.json
gpu=""
[ "$GPU_NODE" = 1 ] && gpu=--require-gpu
said=$(/usr/bin/timeout -k 5 "$TIMEOUT" "$DEVCHECK" check --budget "$BUDGET" $gpu --quiet --json-file "$report" 2>&1)
status=$?
case $status in
  0) /bin/mv -f "$report" "$REPORT_DIR/$NODE-fit.json"; exit 0 ;;   # one per node, not one per job
  1) ;;
  124 | 137) could_not_run "no verdict within $TIMEOUT s" ;;
  *) could_not_run "exit $status: $(printf '%s\n' "$said" | /usr/bin/tail -n 1)" ;;
esac
failed=$("$PYTHON" -c 'import json, sys
checks = json.load(open(sys.argv[1]))["checks"]
print(" ".join(c["id"] for c in checks if c["status"] in ("fail", "error")))' "$report" 2>/dev/null) || failed="failed"
say "not fit: $failed (report $report)"
drain "devcheck: $failed; report $report"
exit 1
