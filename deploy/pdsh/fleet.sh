#!/bin/sh
# The fleet through pdsh over ssh: every node checks itself and prints its report as one line (pdsh -N
# drops the "host:" prefix), compare judges them all. A non-interactive ssh has only the system PATH,
# so devcheck and its Python are named by their full paths, the same on every node.
#   exit 0: fit; 1: a node failed a check, or an outlier or drift; 2: devcheck could not run somewhere
export PDSH_RCMD_TYPE=${PDSH_RCMD_TYPE:-ssh}         # Debian's pdsh defaults to rsh
PDSH=${PDSH:-/usr/bin/pdsh}
NODES=${NODES:-gpu[001-032]}
FANOUT=${FANOUT:-64}                                # nodes at once (pdsh's default is 32)
DEVCHECK=${DEVCHECK:-/opt/devcheck/bin/devcheck}
PYTHON=${PYTHON:-${DEVCHECK%/*}/python3}
BUDGET=${BUDGET:-60s}
GPU_NODE=${GPU_NODE:-1}                             # 1: --require-gpu
FAIL_ON=${FAIL_ON:-outlier,drift,failed-check,floor}
REPORTS=${REPORTS:-./devcheck-fleet-$(/bin/date -u +%Y%m%dT%H%M%SZ).jsonl}
gpu=""
[ "$GPU_NODE" = 1 ] && gpu=--require-gpu
remote="out=\$($DEVCHECK check --budget $BUDGET $gpu --json); status=\$?
if [ \$status -gt 1 ]; then echo \"devcheck could not run on \$(hostname -s): exit \$status\" >&2; exit 2; fi
printf '%s\\n' \"\$out\" | $PYTHON -m json.tool --compact; exit \$status"
"$PDSH" -S -N -f "$FANOUT" -w "$NODES" "$remote" >"$REPORTS"
ran=$?
"$DEVCHECK" compare "$REPORTS" --fail-on "$FAIL_ON"
judged=$?
if [ $ran -gt 1 ]; then echo "devcheck could not run on every node (pdsh exit $ran)" >&2; exit 2; fi
exit $judged
