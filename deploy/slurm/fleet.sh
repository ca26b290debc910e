#!/bin/sh
# The fleet through one srun: every node checks itself and prints its report as one line (JSON Lines,
# so nodes' lines cannot interleave), compare judges them all, and node-exporter's textfile collector
# reads the result. Run it where node-exporter runs (a login node); nothing needs a shared filesystem.
#   exit 0: fit; 1: a node failed a check, or an outlier or drift; 2: devcheck could not run somewhere
DEVCHECK=${DEVCHECK:-/opt/devcheck/bin/devcheck}    # the same full path on every node
PYTHON=${PYTHON:-${DEVCHECK%/*}/python3}            # the same venv's Python (compacts each report)
SRUN=${SRUN:-/usr/bin/srun}
# the whole node, no other job's step beside it; where cgroups constrain devices (ConstrainDevices=yes) a
# step sees only the GPUs it asks for: add them, e.g. SRUN_ARGS="--exclusive --gres=gpu:8"
SRUN_ARGS=${SRUN_ARGS:---exclusive}
NODES=${NODES:-32}
BUDGET=${BUDGET:-60s}
GPU_NODE=${GPU_NODE:-1}                             # 1: --require-gpu
FAIL_ON=${FAIL_ON:-outlier,drift,failed-check,floor}
TEXTFILE_DIR=${TEXTFILE_DIR:-/var/lib/prometheus/node-exporter}   # Debian's; created if missing
REPORTS=${REPORTS:-/var/log/devcheck/fleet-$(/bin/date -u +%Y%m%dT%H%M%SZ).jsonl}
gpu=""
[ "$GPU_NODE" = 1 ] && gpu=--require-gpu
export DEVCHECK PYTHON BUDGET gpu
/bin/mkdir -p "$TEXTFILE_DIR" "${REPORTS%/*}" || exit 2
"$SRUN" --nodes="$NODES" --ntasks-per-node=1 $SRUN_ARGS /bin/sh -c '
  out=$("$DEVCHECK" check --budget "$BUDGET" $gpu --json); status=$?
  if [ $status -gt 1 ]; then echo "devcheck could not run on $(/bin/hostname -s): exit $status" >&2; exit 2; fi
  printf "%s\n" "$out" | "$PYTHON" -m json.tool --compact
  exit $status' >"$REPORTS"
ran=$?
"$DEVCHECK" compare "$REPORTS" --fail-on "$FAIL_ON" --prometheus "$TEXTFILE_DIR/devcheck.prom"
judged=$?
if [ $ran -gt 1 ]; then echo "devcheck could not run on every node (srun exit $ran)" >&2; exit 2; fi
exit $judged
