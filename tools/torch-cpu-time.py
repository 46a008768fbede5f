"""CPU time per G and D step of the PyTorch peer (tools/bench/torch_step.py's networks and steps), next
to its wall time: `python3 tools/torch-cpu-time.py [--size 64 --ngf 16 --ndf 16 --repeats 9 --threads N]`.

On cores shared with other jobs, process CPU time (all threads) is far steadier than wall time;
tools/profile.ts prints the same figure for our steps ("process CPU").
"""
import argparse, os, statistics, sys, time
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "bench"))
import torch  # noqa: E402
import torch_step  # noqa: E402

p = argparse.ArgumentParser()
for k, v in dict(size=64, batch=1, in_channels=1, out_channels=3, ngf=16, ndf=16, blocks=9, layers=3, repeats=9, warmup=3).items():
    p.add_argument("--" + k.replace("_", "-"), type=int, default=v)
p.add_argument("--threads", type=int, default=0, help="torch.set_num_threads (0: torch's default)")
a = p.parse_args()
if a.threads > 0:
    torch.set_num_threads(a.threads)
torch.manual_seed(1)
_, _, g_step, d_step = torch_step.build_gan(a, torch.device("cpu"))
for name, fn in (("G", g_step), ("D", d_step)):
    for _ in range(a.warmup):
        fn()
    wall, cpu = [], []
    for _ in range(a.repeats):
        w0, c0 = time.perf_counter(), time.process_time()
        fn()
        wall.append((time.perf_counter() - w0) * 1e3)
        cpu.append((time.process_time() - c0) * 1e3)
    print(f"torch {name} step: wall {statistics.median(wall):.1f} ms, process CPU {statistics.median(cpu):.1f} ms "
          f"(medians of {a.repeats}; torch {torch.__version__}, {torch.get_num_threads()} threads)")
