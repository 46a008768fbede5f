#!/usr/bin/env bash
# Benchmarks on a real NVIDIA GPU, offline, with PyTorch as the reference (docs/BENCHMARKS.md).
#
# Runs, in one go and on the same GPU, each step under its own time limit so that a failure or a
# hang still leaves the other results:
#   1. tools/gradcheck.ts   every op's gradient against finite differences, on THIS adapter
#   2. tools/bench.ts       this engine vs tfjs-webgpu (and onnxruntime where installed), G and D steps
#   3. tools/profile.ts     per-kernel profile of the same G and D steps, Chrome trace
#   4. tools/bench/torch_step.py   the same G and D steps in PyTorch eager fp32 (cuDNN)
#   5. tools/bench/compare-torch.ts   the side-by-side table
# Everything lands in $OUT (default runs/gpu-<date>).
#
# Two ways to bring the JavaScript side:
#   - a checkout with node_modules installed (npm ci elsewhere on the same OS/arch, copied along),
#     and Node >= 20 on the machine;
#   - OFFLINE=1: `bash tools/pack-offline.sh` first, on a machine with internet; .offline/ then holds
#     bundled tools, dawn.node, a Node binary (used when the host has no Node >= 20) and the
#     Vulkan loader packages (used when the host has no libvulkan.so.1).
# Dawn drives the GPU through Vulkan: the NVIDIA driver's Vulkan ICD must be visible (in a container
# the NVIDIA runtime must expose graphics, e.g. NVIDIA_DRIVER_CAPABILITIES=all).
#
#   bash tools/bench-gpu.sh                    # G/D at 256x256, ngf = ndf = 64 (the paper's size)
#   SIZE=128 NGF=32 NDF=32 bash tools/bench-gpu.sh
#   QUICK=1 bash tools/bench-gpu.sh            # bench --quick (a couple of minutes)
#   BENCH_BUDGET=200 bash tools/bench-gpu.sh   # stop starting new bench cases after 200 s
#   COMPARE_SUBGROUP=1 bash tools/bench-gpu.sh # also time the CPU-shaped conv kernels on this GPU
set -uo pipefail
cd "$(dirname "$0")/.."

SIZE=${SIZE:-256}
NGF=${NGF:-64}
NDF=${NDF:-64}
OUT=${OUT:-runs/gpu-$(date +%Y%m%d-%H%M%S)}
export ASYNDGAN_ADAPTER=${ASYNDGAN_ADAPTER:-nvidia}
mkdir -p "$OUT"
die() { echo "bench-gpu: $*" >&2; exit 1; }

# --- the JavaScript runtime ----------------------------------------------------------------------
node_ok() { command -v node >/dev/null && [ "$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)" -ge 20 ]; }
if [ -n "${OFFLINE:-}" ]; then
  [ -f .offline/bench.js ] || die "OFFLINE=1 needs .offline/ (run tools/pack-offline.sh on a machine with internet)"
  if node_ok; then NODE=$(command -v node)
  else
    NODE=${TMPDIR:-/tmp}/asyndgan-node
    [ -x "$NODE" ] || { xz -dc .offline/node.xz > "$NODE.tmp" && chmod +x "$NODE.tmp" && mv "$NODE.tmp" "$NODE"; } || die "could not unpack .offline/node.xz"
  fi
  NODE_ARGS=()
  toolpath() { echo ".offline/$1.js"; }
else
  node_ok || die "Node >= 20 not found (or use OFFLINE=1 with tools/pack-offline.sh)"
  [ -d node_modules/webgpu ] && [ -d node_modules/tsx ] || die "node_modules is missing: npm ci elsewhere and copy it, or use OFFLINE=1"
  NODE=$(command -v node)
  NODE_ARGS=(--import tsx)
  toolpath() { echo "tools/$1.ts"; }
fi

# --- Vulkan: the loader, and NVIDIA's ICD ---------------------------------------------------------
if ! ldconfig -p 2>/dev/null | grep -q 'libvulkan.so.1'; then
  if ls .offline/debs/*.deb >/dev/null 2>&1; then
    VK=${TMPDIR:-/tmp}/asyndgan-vulkan
    for f in .offline/debs/*.deb; do dpkg -x "$f" "$VK"; done
    export LD_LIBRARY_PATH="$VK/usr/lib/x86_64-linux-gnu${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
    echo "bench-gpu: no libvulkan.so.1 on this host; using the packed loader in $VK"
  else
    echo "bench-gpu: warning: no libvulkan.so.1 found (install libvulkan1); Dawn will find no adapter" >&2
  fi
fi
ICDS=$(ls /usr/share/vulkan/icd.d/nvidia*.json /etc/vulkan/icd.d/nvidia*.json 2>/dev/null | head -1)
if [ -z "$ICDS" ]; then
  for f in /usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json /usr/lib/x86_64-linux-gnu/nvidia/nvidia_icd.json; do
    if [ -f "$f" ]; then export VK_DRIVER_FILES=$f VK_ICD_FILENAMES=$f; ICDS=$f; break; fi
  done
fi
[ -d /usr/local/nvidia/lib64 ] && export LD_LIBRARY_PATH="${LD_LIBRARY_PATH:+$LD_LIBRARY_PATH:}/usr/local/nvidia/lib64"
[ -n "$ICDS" ] || echo "bench-gpu: warning: no NVIDIA Vulkan ICD found; ASYNDGAN_ADAPTER=$ASYNDGAN_ADAPTER will refuse lavapipe" >&2

echo "== environment (-> $OUT/env.txt)"
{
  date -u +%Y-%m-%dT%H:%M:%SZ
  uname -a
  echo "node $("$NODE" --version) ($NODE)"
  echo "vulkan ICD: ${ICDS:-none}"
  WEBGPU=./node_modules/webgpu/index.js; [ -n "${OFFLINE:-}" ] && WEBGPU=./.offline/node_modules/webgpu/index.js
  "$NODE" --input-type=module -e "
    import { create } from '$WEBGPU';
    const gpu = create([]);
    for (const powerPreference of ['high-performance', 'low-power']) {
      const a = await gpu.requestAdapter({ powerPreference });
      const i = a?.info ?? {};
      console.log('adapter (' + powerPreference + '):', a ? [i.vendor, i.architecture, i.device, i.description].join(' / ') +
        '; subgroups ' + a.features.has('subgroups') + ' (' + i.subgroupMinSize + '..' + i.subgroupMaxSize + ')' : 'none');
    }" || echo "listing WebGPU adapters failed"
  nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv || echo "nvidia-smi failed"
  python3 -c 'import torch; print("torch", torch.__version__, "cuda", torch.version.cuda, torch.cuda.get_device_name(0))' || echo "torch/cuda not usable"
} 2>&1 | tee "$OUT/env.txt"

# step NAME SECONDS COMMAND...: runs one step under a time limit, logs it, never aborts the script.
FAILED=()
step() {
  local name=$1 limit=$2; shift 2
  echo "== $name (limit ${limit} s)"
  timeout --kill-after=10 "$limit" "$@" 2>&1 | tee "$OUT/$name.log"
  local rc=${PIPESTATUS[0]}
  [ "$rc" -eq 0 ] || { echo "bench-gpu: $name failed (exit $rc)"; FAILED+=("$name"); }
}

BENCH_ARGS=(--gan-size "$SIZE" --ngf "$NGF" --ndf "$NDF" --out "$OUT/bench.json" --repeats "${REPEATS:-10}")
[ -n "${QUICK:-}" ] && BENCH_ARGS+=(--quick)
[ -n "${BENCH_BUDGET:-}" ] && BENCH_ARGS+=(--budget "$BENCH_BUDGET")

step gradcheck "${GRADCHECK_LIMIT:-180}" "$NODE" "${NODE_ARGS[@]}" "$(toolpath gradcheck)"
step bench "${BENCH_LIMIT:-900}" "$NODE" "${NODE_ARGS[@]}" "$(toolpath bench)" "${BENCH_ARGS[@]}"
# The CPU-shaped convolution kernels on the same GPU, as the baseline of the tiled ones.
[ -n "${COMPARE_SUBGROUP:-}" ] && step bench-subgroup "${BENCH_LIMIT:-900}" "$NODE" "${NODE_ARGS[@]}" "$(toolpath bench)" \
  --gan-size "$SIZE" --ngf "$NGF" --ndf "$NDF" --peers "" --conv-path subgroup --out "$OUT/bench-subgroup.json" \
  --only "${COMPARE_SUBGROUP_ONLY:-conv3x3|step|block}"
step profile "${PROFILE_LIMIT:-180}" "$NODE" "${NODE_ARGS[@]}" "$(toolpath profile)" --size "$SIZE" --ngf "$NGF" --ndf "$NDF" \
  --trace "$OUT/trace.json" --json "$OUT/profile.json"
# PyTorch runs the G and D steps at the size the bench used (--quick shrinks it).
GAN_SIZE=$SIZE
[ -f "$OUT/bench.json" ] && GAN_SIZE=$("$NODE" -p "JSON.parse(require('fs').readFileSync('$OUT/bench.json','utf8')).options.gan.size")
step torch "${TORCH_LIMIT:-300}" python3 tools/bench/torch_step.py --size "$GAN_SIZE" --ngf "$NGF" --ndf "$NDF" --json "$OUT/torch.json"
if [ -f "$OUT/bench.json" ] && [ -f "$OUT/torch.json" ]; then
  step compare 60 "$NODE" "${NODE_ARGS[@]}" "$(toolpath bench/compare-torch)" "$OUT/bench.json" "$OUT/torch.json"
fi
echo "results in $OUT${FAILED[*]:+; failed steps: ${FAILED[*]}}"
[ ${#FAILED[@]} -eq 0 ]
