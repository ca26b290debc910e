#!/usr/bin/env bash
# Everything GPU-side, on a fresh GPU machine, in under 5 minutes, with no network: the real-GPU
# tests (`pytest -m gpu`), then the four commands with --json, a recording of the machine, the
# versions, the engine's step and the copies against torch (step.py, copies.py), all kept in one
# folder ($OUT on the device tool, else ./gpu-smoke or the first argument).
#
#   bash benchmarks/gpu_smoke.sh [FOLDER]
#
# It uses the CuPy already installed; small missing wheels (array-api-compat, array-api-strict) are
# installed from ./.whl when that folder exists. Run from the repository root.
set -u
out=${1:-${OUT:-gpu-smoke}}
mkdir -p "$out"
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1
if [ -d .whl ]; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
    && export PYTHONPATH=$PYTHONPATH:/tmp/site
fi
SECONDS=0
status=0

{
  nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv 2>&1
  python3 -c "import sys, numpy, cupy; print('python', sys.version.split()[0], 'numpy', numpy.__version__, 'cupy', cupy.__version__, 'runtime', cupy.cuda.runtime.runtimeGetVersion(), 'driver', cupy.cuda.runtime.driverGetVersion())" 2>&1
} | tee "$out/versions.txt"

python3 -m pytest -m gpu -q -p no:cacheprovider -rs tests/test_gpu.py 2>&1 | tee "$out/pytest-gpu.txt"
case "${PIPESTATUS[0]}" in
  0) ;;
  5) echo "gpu_smoke: no GPU usable through CuPy here: the gpu tests were skipped"; status=1 ;;
  *) status=1 ;;
esac

run() {  # name, then the command's arguments
  local name=$1; shift
  local t0=$SECONDS
  python3 -m devcheck "$@" --json >"$out/$name.json" 2>"$out/$name.err"
  local code=$?
  printf '%-6s exit %s  %4d s  %s\n' "$name" "$code" "$((SECONDS - t0))" \
    "$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['verdict'][:150])" "$out/$name.json" 2>/dev/null)"
  [ "$code" = 0 ] || status=1
}
run env env --record "$out/recording.json"
run grad grad
run train train
run bench bench --size 10000 --max-time 60
run check check --budget 60s

python3 - "$out" <<'PY' | tee "$out/summary.txt"
import json, sys
out = sys.argv[1]
for name in ("env", "grad", "train", "bench", "check"):
    try:
        doc = json.load(open(f"{out}/{name}.json"))
    except Exception as e:
        print(f"{name}: no JSON ({e})"); continue
    bad = [f"{c['id']} {c['status']}: {c['summary'][:160]}" for c in doc["checks"] if c["status"] not in ("ok", "skip", "n/a")]
    print(f"{name}: ok={doc['ok']} {'; '.join(bad) or 'every check ok'}")
for r in json.load(open(f"{out}/bench.json"))["data"]["records"]:
    pct = r["percent_of_peak"]
    print(f"  {r['case']:<24} {r['device']:<7} {r['dtype']:<8} {r['stats']['median_s']*1e3:9.3f} ms {r['rate']:12.1f} {r['unit']:<9}"
          + (f" {pct:5.1f}% of {r['peak']['value']:.0f}" if pct else ""))
PY
# issue 13's GPU figures: the engine's step against torch eager, and the copy paths against torch's
# (figures to read, not a pass or fail of this smoke run: their exit codes leave $status alone)
python3 benchmarks/step.py 2>&1 | grep -v "^USDT" | tee "$out/step.txt"
python3 benchmarks/copies.py 2>&1 | tee "$out/copies.txt"
echo "gpu_smoke: $SECONDS s, status $status, output in $out"
exit $status
