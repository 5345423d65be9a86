#!/usr/bin/env bash
# One prepared pass on a lent GPU machine (Python 3.12, torch preinstalled, MuJoCo 3.3.0 wheels
# from ../shared/gpu/wheels.sh in .whl/): the test suite on CUDA and MuJoCo 3.3, the speed
# benchmark on cuda, and the throughput of the corl-gap protocol on one task.
# Results go to $OUT (tests.log, bench.log, corl.log, runs/).
set -u -o pipefail
REPO=$PWD
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target .devsite .whl/*.whl \
  && python3 -m pip install -q --no-index --no-deps --no-build-isolation --target .devsite . || exit 1
export PYTHONPATH=$REPO/.devsite PYTHONUNBUFFERED=1  # no EGL libraries there: rendering tests skip
nvidia-smi --query-gpu=name,memory.total --format=csv | tee $OUT/gpu.txt
python3 -c "import mujoco, torch; print('mujoco', mujoco.__version__, 'torch', torch.__version__, 'cuda', torch.cuda.is_available())" | tee -a $OUT/gpu.txt
# the installed package, not the source tree, must be imported: run from elsewhere
(cd /tmp && timeout 240 python3 -m pytest -q -p no:cacheprovider -x "$REPO/tests" 2>&1 | tee $OUT/tests.log | tail -15)
(cd /tmp && timeout 120 python3 "$REPO/bench/speed.py" --device cuda --updates 1000 2>&1 | tee $OUT/bench.log)
(cd /tmp && /usr/bin/time -v timeout 150 "$REPO/.devsite/bin/robotcl" run corl-gap "tasks=[T3]" steps_per_task=15000 \
   eval.every_steps=5000 runs_dir=$OUT/runs progress=false 2>&1 | tee $OUT/corl.log | grep -E "Elapsed|Maximum resident|acc|error" )
ls $OUT/runs/*/* 2>/dev/null | head
