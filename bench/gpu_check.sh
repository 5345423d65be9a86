#!/usr/bin/env bash
# One prepared pass on a lent GPU machine (Python 3.12, torch preinstalled, MuJoCo 3.3.0 and other
# wheels from ../shared/gpu/wheels.sh in .whl/): the speed benchmark on cuda, then the test suite
# on CUDA (device=auto) and MuJoCo 3.3. Logs go to $OUT (gpu.txt, bench.log, ssl.log, tests.log).
set -u -o pipefail
REPO=$PWD
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target .devsite .whl/*.whl \
  && python3 -m pip install -q --no-index --no-deps --no-build-isolation --upgrade --target .devsite . || exit 1
export PYTHONPATH=$REPO/.devsite PYTHONUNBUFFERED=1  # no EGL libraries there: rendering tests skip
nvidia-smi --query-gpu=name,memory.total --format=csv | tee $OUT/gpu.txt
python3 -c "import mujoco, torch; print('mujoco', mujoco.__version__, 'torch', torch.__version__, 'cuda', torch.cuda.is_available())" | tee -a $OUT/gpu.txt
# the installed package, not the source tree, must be imported: run from elsewhere
(cd /tmp && timeout 150 python3 "$REPO/bench/speed.py" --device cuda --updates 1000 --train-steps 3000 2>&1 | tee $OUT/bench.log)
# one run's device memory, against robotcl.study.placement's estimate (1 GiB a state run)
(cd /tmp && timeout 60 python3 "$REPO/bench/gpu_memory.py" 2>&1 | tee $OUT/gpu_memory.log)
# what each contrastive objective adds to an update, on the GPU (pixels: bench/pixels.py needs EGL)
(cd /tmp && timeout 90 python3 "$REPO/bench/ssl_cost.py" --device cuda --updates 200 2>&1 | tee $OUT/ssl.log)
(cd /tmp && timeout "${TEST_TIMEOUT:-200}" python3 -m pytest -q -n 8 -p no:cacheprovider "$REPO/tests" 2>&1 | tee $OUT/tests.log | tail -15)
