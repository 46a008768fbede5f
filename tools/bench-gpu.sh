#!/usr/bin/env bash
# Benchmarks on a real NVIDIA GPU, offline, with PyTorch as the reference (docs/BENCHMARKS.md).
#
# Needs, on the GPU machine (no internet required):
#   - this checkout WITH node_modules already installed (npm ci cannot run offline: copy the tree,
#     or `npm ci` elsewhere on the same OS/arch and copy node_modules along);
#   - Node >= 20; the NVIDIA driver with its Vulkan ICD (Dawn uses Vulkan: in a container the
#     NVIDIA runtime must expose graphics, e.g. NVIDIA_DRIVER_CAPABILITIES=all, and libvulkan1);
#   - python3 with torch built for CUDA.
#
# Runs, in one go and on the same GPU: tools/bench.ts (this engine vs tfjs-webgpu and onnxruntime
# WebGPU/CPU, plus the G and D steps), tools/profile.ts (per-kernel profile of the same steps,
# Chrome trace), tools/bench/torch_step.py (PyTorch eager fp32 G and D steps and conv3x3), and a
# side-by-side table. Everything lands in $OUT (default runs/gpu-<date>).
#
#   bash tools/bench-gpu.sh                    # G/D at 256x256, ngf = ndf = 64 (the paper's size)
#   SIZE=128 NGF=32 NDF=32 bash tools/bench-gpu.sh
#   QUICK=1 bash tools/bench-gpu.sh            # bench --quick (a couple of minutes)
set -euo pipefail
cd "$(dirname "$0")/.."

SIZE=${SIZE:-256}
NGF=${NGF:-64}
NDF=${NDF:-64}
OUT=${OUT:-runs/gpu-$(date +%Y%m%d-%H%M%S)}
export ASYNDGAN_ADAPTER=${ASYNDGAN_ADAPTER:-nvidia}
mkdir -p "$OUT"

echo "== environment (-> $OUT/env.txt)"
{
  date -u +%Y-%m-%dT%H:%M:%SZ
  uname -a
  node --version
  nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv || echo "nvidia-smi failed"
  ls /usr/share/vulkan/icd.d /etc/vulkan/icd.d 2>/dev/null || true
  python3 -c 'import torch; print("torch", torch.__version__, "cuda", torch.version.cuda, torch.cuda.get_device_name(0))' || echo "torch/cuda not usable"
} 2>&1 | tee "$OUT/env.txt"

[ -d node_modules/webgpu ] && [ -d node_modules/tsx ] || {
  echo "node_modules is missing or incomplete: install it on a machine with internet (npm ci) and copy it here" >&2
  exit 1
}
if ! ls /usr/share/vulkan/icd.d/nvidia* /etc/vulkan/icd.d/nvidia* >/dev/null 2>&1; then
  echo "warning: no NVIDIA Vulkan ICD found; Dawn may only see lavapipe (ASYNDGAN_ADAPTER=$ASYNDGAN_ADAPTER will then refuse to start)" >&2
fi

BENCH_ARGS=(--gan-size "$SIZE" --ngf "$NGF" --ndf "$NDF" --out "$OUT/bench.json")
[ -n "${QUICK:-}" ] && BENCH_ARGS+=(--quick)

echo "== tools/bench.ts ${BENCH_ARGS[*]}"
node --import tsx tools/bench.ts "${BENCH_ARGS[@]}" 2>&1 | tee "$OUT/bench.log"

echo "== tools/profile.ts --size $SIZE --ngf $NGF --ndf $NDF"
node --import tsx tools/profile.ts --size "$SIZE" --ngf "$NGF" --ndf "$NDF" \
  --trace "$OUT/trace.json" --json "$OUT/profile.json" 2>&1 | tee "$OUT/profile.log"

echo "== tools/bench/torch_step.py"
GAN_SIZE=$(node -e "console.log(JSON.parse(require('fs').readFileSync('$OUT/bench.json','utf8')).options.gan.size)")
python3 tools/bench/torch_step.py --size "$GAN_SIZE" --ngf "$NGF" --ndf "$NDF" --json "$OUT/torch.json" 2>&1 | tee "$OUT/torch.log"

echo "== ours vs PyTorch"
node --import tsx tools/bench/compare-torch.ts "$OUT/bench.json" "$OUT/torch.json" 2>&1 | tee "$OUT/compare.txt"
echo "results in $OUT"
