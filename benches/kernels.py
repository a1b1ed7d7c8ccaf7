#!/usr/bin/env python3
"""Where one training step's time goes on the GPU: runs the native benchmark (`--bin bench`) on
wgpu with CubeCL's kernel profiler on, and sums the kernel time of one timed step by kernel.

  benches/kernels.py BENCH [--data DIR] [--input-size 32] [--batch-size 16] [--top 15]

BENCH is the built benchmark, e.g. `cargo build --release --features gpu --bin bench` then
target/release/bench. CubeCL reads its profiler settings from `cubecl.toml` in the working
directory; this script runs the benchmark in a temporary one that holds only that file. The
profiler waits for each kernel to finish, so the step is slower than unprofiled: read the
shares, not the total, as the cost of each kernel. Prints a table and, with --json, the figures."""
import argparse, collections, json, os, re, subprocess, sys, tempfile

p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
p.add_argument("bench")
p.add_argument("--data", default="/usr/share/datasets/fashion-mnist")
p.add_argument("--input-size", default="32")
p.add_argument("--batch-size", default="16")
p.add_argument("--top", type=int, default=15)
p.add_argument("--json", action="store_true")
a = p.parse_args()

# One warm-up step compiles the kernels; the profile is of the second timed step (step 3 of 3).
steps = 2
with tempfile.TemporaryDirectory() as cwd:
    with open(os.path.join(cwd, "cubecl.toml"), "w") as f:
        f.write('[profiling.logger]\nlevel = "basic"\nstderr = true\n')
    run = subprocess.run(
        [os.path.abspath(a.bench), "--data", a.data, "--device", "wgpu", "--input-size", a.input_size,
         "--batch-sizes", a.batch_size, "--steps", str(steps), "--runs", "1"],
        cwd=cwd, capture_output=True, text=True)
if run.returncode != 0:
    sys.exit(f"the benchmark failed ({run.returncode}):\n{run.stderr[-3000:]}")

device = json.loads(run.stdout)["report"]["device"]
start, end = f"step {steps} / {steps + 1}", f"step {steps + 1} / {steps + 1}"
# A profiled launch: "| 1.54ms | DirectConv2dKernel_ba0b9fa0" (the name may have more "|" parts).
launch = re.compile(r"^\s*\|\s*([\d.]+)(ms|µs|us|ns|s)\s*\|\s*(.+)$")
unit_ms = {"s": 1e3, "ms": 1.0, "µs": 1e-3, "us": 1e-3, "ns": 1e-6}
time_ms, launches, inside = collections.Counter(), collections.Counter(), False
# Progress lines are written with "\r", so split on both.
for line in re.split(r"[\r\n]", run.stderr):
    if start in line:
        inside = True
    elif end in line and inside:
        break
    elif inside and (m := launch.match(line)):
        # Drop the hash CubeCL appends to each compiled variant, keep the kernel's name.
        parts = [re.sub(r"_[0-9a-f]{8}\b", "", part).strip() for part in m.group(3).split("|")]
        # Element-wise kernels are generic ("KernelBinop | SubOp"): keep the operation too.
        name = " ".join(parts[:2]) if parts[0].startswith("Kernel") and len(parts) > 1 else parts[0]
        time_ms[name] += float(m.group(1)) * unit_ms[m.group(2)]
        launches[name] += 1
if not time_ms:
    sys.exit("no profiled kernels in the timed step: is this a build of --bin bench with wgpu?")

total = sum(time_ms.values())
print(f"{device}; {a.input_size}×{a.input_size}, batch {a.batch_size}: one training step, "
      f"{total:,.1f} ms of kernel time in {sum(launches.values()):,} launches")
print(f"{'kernel':<44} {'ms':>9} {'share':>7} {'launches':>9}")
for name, ms in time_ms.most_common(a.top):
    print(f"{name[:44]:<44} {ms:>9.1f} {100 * ms / total:>6.1f}% {launches[name]:>9}")
if a.json:
    print(json.dumps({"device": device, "input_size": int(a.input_size), "batch_size": int(a.batch_size),
                      "total_ms": total, "kernels": [{"name": n, "ms": t, "launches": launches[n]}
                                                     for n, t in time_ms.most_common()]}, indent=2))
