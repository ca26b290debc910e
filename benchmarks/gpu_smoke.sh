#!/usr/bin/env bash
# Everything GPU-side, on a fresh GPU machine, in under 5 minutes, with no network: the real-GPU
# tests (`pytest -m gpu`), then the five commands with --json, a recording of the machine, the
# versions, the engine's step and the copies against torch (step.py, copies.py), all kept in one
# folder ($OUT on the device tool, else ./gpu-smoke or the first argument).
#
#   python3 scripts/fetch_wheels.py     # once, where there is network: the wheels into ./.whl
#   bash benchmarks/gpu_smoke.sh [FOLDER]
#
# It needs only Python with NumPy, CuPy and nvidia-ml-py (torch for the reference columns): the rest
# (Typer, Rich, pytest, array-api-compat...) it installs from ./.whl with --no-index, into a folder
# of its own. Run from the repository root. Every step runs even when one before it failed; where
# CuPy finds no GPU each step says "no GPU" and the commands run on the CPU with short budgets.
# Exit 0: every step passed on a GPU; 1: a step failed, or there was no GPU to test.
set -u
out=${1:-${OUT:-gpu-smoke}}
mkdir -p "$out"
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1
SECONDS=0
status=0

if [ -f .whl/requirements.txt ]; then
  site=$(mktemp -d)
  trap 'rm -rf "$site"' EXIT
  python3 -m pip install -q --no-index --find-links .whl --no-deps --no-compile --no-cache-dir \
    --disable-pip-version-check --target "$site" -r .whl/requirements.txt && export PYTHONPATH=$PYTHONPATH:$site
fi
if ! why=$(python3 -c "import devcheck.cli, devcheck.engine, pytest" 2>&1); then
  echo "gpu_smoke: devcheck or pytest does not import here (${why##*$'\n'}): run python3 scripts/fetch_wheels.py" \
    "where there is network and bring .whl with the tree (the device tool: carry .whl)" | tee "$out/missing.txt"
  status=1
fi

{
  if command -v nvidia-smi >/dev/null; then
    nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv 2>&1
  else
    echo "nvidia-smi: not on PATH (no NVIDIA driver here)"
  fi
  python3 - <<'PY' 2>&1
import sys

print("python", sys.version.split()[0])
try:
    import numpy
    import cupy

    runtime = cupy.cuda.runtime
    print("numpy", numpy.__version__, "cupy", cupy.__version__, "runtime", runtime.runtimeGetVersion(),
          "driver", runtime.driverGetVersion())
    print("cuda devices:", runtime.getDeviceCount())
except Exception as e:  # no CuPy, no driver, no GPU: said in one line, the count left at 0
    print(f"no GPU usable through CuPy here: {type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}")
    print("cuda devices: 0")
PY
} | tee "$out/versions.txt"
gpus=$(sed -n 's/^cuda devices: //p' "$out/versions.txt")
gpus=${gpus:-0}

python3 -m pytest -m gpu -q -p no:cacheprovider -rs tests/test_gpu.py 2>&1 | tee "$out/pytest-gpu.txt"
code=${PIPESTATUS[0]}
if [ "$gpus" = 0 ] && [ "$code" = 5 ]; then
  echo "gpu_smoke: no GPU usable through CuPy here: the gpu tests were skipped" | tee -a "$out/pytest-gpu.txt"
fi
[ "$code" = 0 ] || status=1

# where there is no GPU, the same steps on the CPU, kept short: they prove the script, not the machine
if [ "$gpus" = 0 ]; then bench=(--size 2000 --max-time 5) budget=10s quick=--quick
else bench=(--size 10000 --max-time 60) budget=60s quick=; fi
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
run bench bench "${bench[@]}"
run check check --budget "$budget"

python3 - "$out" <<'PY' | tee "$out/summary.txt"
import json, sys

out = sys.argv[1]
docs = {}
for name in ("env", "grad", "train", "bench", "check"):
    try:
        text = open(f"{out}/{name}.json").read()
        if not text.strip():
            print(f"{name}: no JSON ({name}.json is empty: {name}.err says why)")
            continue
        docs[name] = doc = json.loads(text)
        bad = [f"{c['id']} {c['status']}: {c['summary'][:160]}" for c in doc["checks"] if c["status"] not in ("ok", "skip", "n/a")]
        gpu = [c["summary"] for c in doc["checks"] if c["id"] == "devices.gpu" and c["status"] != "ok"]
    except Exception as e:  # no file, or not devcheck's JSON
        print(f"{name}: no JSON ({type(e).__name__}: {e})")
        continue
    said = f" [{gpu[0][:160]}]" if gpu else f" [{doc['verdict'][:160]}]" if name == "env" else ""
    print(f"{name}: ok={doc['ok']} {'; '.join(bad) or 'every check ok'}{said}")
try:
    for r in docs.get("bench", {}).get("data", {}).get("records", []):
        pct = r["percent_of_peak"]
        print(f"  {r['case']:<24} {r['device']:<7} {r['dtype']:<8} {r['stats']['median_s']*1e3:9.3f} ms {r['rate']:12.1f} {r['unit']:<9}"
              + (f" {pct:5.1f}% of {r['peak']['value']:.0f}" if pct else ""))
except Exception as e:  # a record of another shape: said, and the run goes on
    print(f"bench: records unreadable ({type(e).__name__}: {e})")
PY
# issue 13's GPU figures: the engine's step against torch eager, and the copy paths against torch's
# (figures to read, not a pass or fail of this smoke run: their exit codes leave $status alone)
python3 benchmarks/step.py $quick 2>&1 | grep -v "^USDT" | tee "$out/step.txt"
python3 benchmarks/copies.py 2>&1 | tee "$out/copies.txt"
if [ "$gpus" = 0 ]; then
  status=1
  echo "gpu_smoke: no GPU usable through CuPy here: every step ran, none on a GPU"
fi
echo "gpu_smoke: $SECONDS s, status $status, output in $out"
exit $status
