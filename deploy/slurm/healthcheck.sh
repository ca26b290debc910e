#!/bin/sh
# Slurm HealthCheckProgram (slurm.conf: HealthCheckProgram=/etc/slurm/devcheck-health.sh and
# HealthCheckInterval=3600): the prolog's gate, run by slurmd at its start and every interval.
# slurmd kills a health check at 60 s and a killed run drains nothing, so the budget stays short
# and TIMEOUT stops devcheck well before that, leaving the drain time to happen.
BUDGET=${BUDGET:-20s}
TIMEOUT=${TIMEOUT:-45}
GATE=${GATE:-/etc/slurm/prolog.d/devcheck.sh}   # deploy/slurm/prolog.sh, installed as the Prolog
export BUDGET TIMEOUT
exec /bin/sh "$GATE"
