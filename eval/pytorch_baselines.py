"""PyTorch's best on this machine, for `cargo bench --bench throughput -- compare`: the reference
network (eval/deepcad_reference.py) in eager mode and under `torch.compile`, each in float32 and
in bfloat16 autocast (CPU autocast: convolutions in bf16, the loss in float32), and each with
PyTorch's default (NCDHW) and channels-last (`torch.channels_last_3d`) memory order, for one 64³
training step (batch 1, the reference's loss and Adam) and one 144³ forward under no_grad.
Channels-last is PyTorch's own advice for convolutions on CPUs (oneDNN reads it without reorders),
so a fair "PyTorch's best" includes it.
Prints one JSON object per line: {"mode", "layout", "precision", "train_s", "forward_voxels_per_s"}.

  python eval/pytorch_baselines.py --threads 2 [--modes eager,compile] [--precisions float32,bfloat16]
      [--layouts contiguous,channels-last]
"""

import argparse
import json
import sys
import time
from contextlib import nullcontext
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from deepcad_reference import Network3DUnet, train_step  # noqa: E402


def autocast(precision):
    return torch.autocast("cpu", dtype=torch.bfloat16) if precision == "bfloat16" else nullcontext()


def timed(step, repeats):
    step()  # warm-up: compilation, oneDNN primitives, allocator growth
    step()
    started = time.perf_counter()
    for _ in range(repeats):
        step()
    return (time.perf_counter() - started) / repeats


LAYOUTS = {"contiguous": torch.contiguous_format, "channels-last": torch.channels_last_3d}


def measure(mode, layout, precision, patch, size, iterations, repeats):
    torch.manual_seed(0)
    order = LAYOUTS[layout]
    net = Network3DUnet(16).to(memory_format=order)
    model = torch.compile(net) if mode == "compile" else net
    optimizer = torch.optim.Adam(net.parameters(), lr=5e-5, betas=(0.5, 0.999))
    x = torch.randn(1, 1, patch, patch, patch).contiguous(memory_format=order)
    y = torch.randn(1, 1, patch, patch, patch).contiguous(memory_format=order)

    def train():
        with autocast(precision):
            train_step(model, optimizer, x, y)

    train_s = timed(train, iterations)
    tile = torch.randn(1, 1, size, size, size).contiguous(memory_format=order)
    net.eval()

    def forward():
        with torch.no_grad(), autocast(precision):
            model(tile)

    forward_s = timed(forward, repeats)
    return {"mode": mode, "layout": layout, "precision": precision, "train_s": train_s, "forward_voxels_per_s": size ** 3 / forward_s}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--modes", default="eager,compile")
    parser.add_argument("--precisions", default="float32,bfloat16")
    parser.add_argument("--layouts", default="contiguous,channels-last")
    parser.add_argument("--patch", type=int, default=64)
    parser.add_argument("--size", type=int, default=144)
    parser.add_argument("--iterations", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    for mode in args.modes.split(","):
        for layout in args.layouts.split(","):
            for precision in args.precisions.split(","):
                try:
                    result = measure(mode, layout, precision, args.patch, args.size, args.iterations, args.repeats)
                except Exception as error:  # e.g. no C++ compiler for torch.compile: say so, go on
                    result = {"mode": mode, "layout": layout, "precision": precision,
                              "error": f"{type(error).__name__}: {error}"[:300]}
                print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
