"""DeepCAD-RT in PyTorch, written from ../shared/reference/deepcad-spec.md (not from the authors' code).

The yardstick of the evaluation harness: the same network (§2.1), training (§1.2, §3) and tiling
(§4.1) as the reference package, so that quality and speed of the Rust engine can be compared with
"DeepCAD as its authors run it" on the same machine, data and budget.

Faithful to the reference where it matters for the comparison:
* normalisation: x / scale_factor - mean of the (truncated) stack; Adam(lr 5e-5, betas 0.5/0.999);
* patch grid with the computed temporal gap, 50 % input/target swap, 8 dihedral transforms;
* inference tiling of §4.1 (patch 150³, overlap 0.6 by default, the last tile snapped to the end,
  per-tile sqrt(Σin/Σout) brightness factor) and the output cast to the input dtype *without
  clipping* (what the current package does; reported separately from the float32 output).
Deliberate deviations, none of which change results: torch.no_grad() at inference, float32
accumulation, guards for s_num <= 1 and gap_t < 1, seeded.

Also implements the Rust engine's seamless tiling (tiles on multiples of 8, halo 52, reflect
padding, centres kept) and its normalisation, and loads a Rust model bundle (.safetensors), so the
harness can check that the same weights and tiling give the same numbers in both implementations.

Subcommands (each prints one JSON line with its measurements):
  train   MOVIE -o MODEL.pth [--patch 64 --patches 200 --epochs 3 --max-frames N --lr 5e-5 --seed 0]
          [--time-budget SECONDS]   (epochs until the budget is spent; --epochs, if given, is the cap)
  denoise MOVIE -m MODEL.pth|BUNDLE.safetensors -o OUT.tif [--tiling reference|seamless] [--patch 150 --overlap 0.6]
          [--tile T,Y,X --halo 52] [--uint16-out OUT16.tif]
  bench-network [--size 144]           forward throughput of one tile (no_grad)
  bench-train  [--patch 64 --iterations 8]   seconds per training iteration (batch 1)
  matmul-peak                          float32 matrix-multiply GFLOP/s of this machine (2 threads)
"""

import argparse
import json
import math
import random
import resource
import sys
import time

import numpy as np
import tifffile
import torch
import torch.nn as nn
import torch.nn.functional as F


# ----------------------------------------------------------------------------------------- network

class SingleConv(nn.Module):
    def __init__(self, cin, cout):
        super().__init__()
        self.conv = nn.Conv3d(cin, cout, 3, padding=1, bias=True)

    def forward(self, x):
        return F.relu(self.conv(x), inplace=True)


class DoubleConv(nn.Module):
    def __init__(self, cin, cout, encoder):
        super().__init__()
        mid = max(cout // 2, cin) if encoder else cout
        self.SingleConv1 = SingleConv(cin, mid)
        self.SingleConv2 = SingleConv(mid, cout)

    def forward(self, x):
        return self.SingleConv2(self.SingleConv1(x))


class Level(nn.Module):
    def __init__(self, cin, cout, encoder):
        super().__init__()
        self.basic_module = DoubleConv(cin, cout, encoder)


class UNet3D(nn.Module):
    """§2.1: 4 levels [f, 2f, 4f, 8f], conv+ReLU, max-pool 2, nearest upsampling to the skip's
    size, concat [skip, up], linear 1x1x1 head; parameter names as the reference state dict."""

    def __init__(self, f=16):
        super().__init__()
        widths = [f, 2 * f, 4 * f, 8 * f]
        self.encoders = nn.ModuleList(
            [Level(1 if i == 0 else widths[i - 1], widths[i], True) for i in range(4)])
        self.decoders = nn.ModuleList(
            [Level(widths[i] + widths[i + 1], widths[i], False) for i in (2, 1, 0)])
        self.final_conv = nn.Conv3d(f, 1, 1, bias=True)

    def forward(self, x):
        skips = []
        for i, encoder in enumerate(self.encoders):
            if i > 0:
                x = F.max_pool3d(x, 2)
            x = encoder.basic_module(x)
            skips.append(x)
        for decoder, skip in zip(self.decoders, reversed(skips[:-1])):
            x = F.interpolate(x, size=skip.shape[2:], mode="nearest")
            x = decoder.basic_module(torch.cat([skip, x], dim=1))
        return self.final_conv(x)


class Network3DUnet(nn.Module):
    def __init__(self, f=16):
        super().__init__()
        self.Generator = UNet3D(f)

    def forward(self, x):
        return self.Generator(x)


def flops_per_voxel(f=16):
    """Exact multiply-add FLOPs (2 per MAC, plus one add per bias) per output voxel of one forward pass."""
    widths = [f, 2 * f, 4 * f, 8 * f]
    total = 0.0
    cin = 1
    for level, width in enumerate(widths):  # encoders
        mid = max(width // 2, cin)
        total += (2 * 27 * cin * mid + mid + 2 * 27 * mid * width + width) / 8 ** level
        cin = width
    for level in (2, 1, 0):  # decoders
        cat = widths[level] + widths[level + 1]
        w = widths[level]
        total += (2 * 27 * cat * w + w + 2 * 27 * w * w + w) / 8 ** level
    return total + 2 * f + 1


# --------------------------------------------------------------------------------------- training

def read_movie(path, max_frames=None):
    movie = tifffile.imread(path)
    if movie.ndim != 3:
        sys.exit(f"{path}: expected a T×H×W grayscale movie, got shape {movie.shape}")
    return movie[:max_frames] if max_frames else movie


def patch_grid(shape, patch, overlap, patches):
    """§1.2 steps 3 and 5: the spatial grid from the overlap, the temporal gap computed so that the
    grid holds about `patches` windows of 2·patch_t frames (guards for s_num <= 1 and gap_t < 1)."""
    t, h, w = shape
    pt, py, px = patch
    gap_y, gap_x = int(py * (1 - overlap)), int(px * (1 - overlap))
    w_num = math.floor((w - px) / gap_x) + 1
    h_num = math.floor((h - py) / gap_y) + 1
    s_num = math.ceil(patches / w_num / h_num)
    gap_t = max(1, math.floor((t - 2 * pt) / (s_num - 1))) if s_num > 1 else max(1, t - 2 * pt + 1)
    grid = []
    for y in range(int((h - py + gap_y) / gap_y)):
        for x in range(int((w - px + gap_x) / gap_x)):
            for k in range(int((t - 2 * pt + gap_t) / gap_t)):
                grid.append((k * gap_t, y * gap_y, x * gap_x))
    return grid


def dihedral(volume, k):
    """The 8 in-plane transforms of §1.2 step 6 (volume [T, H, W])."""
    if k >= 4:
        volume = volume[:, :, ::-1]
    return np.rot90(volume, k % 4, axes=(1, 2))


def train_step(net, optimizer, inp, tgt):
    """§3: loss 0.5·L1 + 0.5·MSE, one Adam step; returns the loss (reading it waits for the device)."""
    out = net(inp)
    loss = 0.5 * F.l1_loss(out, tgt) + 0.5 * F.mse_loss(out, tgt)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    return loss.item()


def train(args):
    """Shuffled passes over the patch grid (epochs) until `--epochs` passes are done or, with
    `--time-budget`, until that many wall-clock seconds have passed since the training loop began
    (the pass under way ends early; `--epochs` stays the cap when given); then one save."""
    torch.manual_seed(args.seed)
    random.seed(args.seed)
    torch.set_num_threads(args.threads)
    movie = read_movie(args.movie, args.max_frames).astype(np.float32) / args.scale_factor
    mean = float(movie.mean())
    movie -= mean
    patch = (args.patch_t or args.patch, args.patch, args.patch)
    grid = patch_grid(movie.shape, patch, args.overlap, args.patches)
    net = Network3DUnet(args.fmap).to(args.device)
    optimizer = torch.optim.Adam(net.parameters(), lr=args.lr, betas=(0.5, 0.999))
    pt, py, px = patch
    epochs = args.epochs if args.epochs is not None else (None if args.time_budget is not None else 3)
    times, losses = [], []
    epochs_started, stopped_early = 0, False
    loop_started = time.perf_counter()

    def out_of_time():
        return args.time_budget is not None and time.perf_counter() - loop_started >= args.time_budget

    while epochs is None or epochs_started < epochs:
        if times and out_of_time():
            break
        epochs_started += 1
        order = list(range(len(grid)))
        random.shuffle(order)
        for i in order:
            if times and out_of_time():
                stopped_early = True
                break
            t0, y0, x0 = grid[i]
            window = movie[t0:t0 + 2 * pt, y0:y0 + py, x0:x0 + px]
            inp, tgt = window[0::2], window[1::2]
            if random.random() < 0.5:
                inp, tgt = tgt, inp
            k = random.randrange(8)
            inp = torch.from_numpy(np.ascontiguousarray(dihedral(inp, k)))[None, None].to(args.device)
            tgt = torch.from_numpy(np.ascontiguousarray(dihedral(tgt, k)))[None, None].to(args.device)
            started = time.perf_counter()
            losses.append(train_step(net, optimizer, inp, tgt))
            times.append(time.perf_counter() - started)
        if stopped_early:
            break
    loop_seconds = time.perf_counter() - loop_started
    torch.save({k: v.cpu() for k, v in net.state_dict().items()}, args.output)
    steady = times[1:] or times
    return {"iterations": len(times), "epochs_started": epochs_started,
            "epochs_completed": epochs_started - (1 if stopped_early else 0),
            "time_budget_seconds": args.time_budget, "epochs_cap": args.epochs, "loop_seconds": loop_seconds,
            "seconds_per_iteration": float(np.mean(steady)),
            "final_loss": float(np.mean(losses[-20:])), "mean": mean, "patches_per_epoch": len(grid)}


# -------------------------------------------------------------------------------------- inference

def load_network(path, fmap):
    """A reference .pth state dict, or a Rust bundle (.safetensors: same tensor names, metadata
    with the normalisation). Returns (network, normalisation)."""
    net = Network3DUnet(fmap)
    if path.endswith(".safetensors"):
        from safetensors import safe_open
        with safe_open(path, framework="pt") as bundle:
            meta = json.loads(bundle.metadata()["deepcad"])
            state = {k: bundle.get_tensor(k) for k in bundle.keys()}
        net = Network3DUnet(meta["base_width"])
        normalization = meta["normalization"]
    else:
        state = torch.load(path, map_location="cpu", weights_only=True)
        normalization = {"mode": "stack_mean", "scale_factor": 1.0}
    net.load_state_dict(state)
    return net.eval(), normalization


def reference_axis_tiles(length, patch, overlap):
    """§4.1 step 3: (read_start, keep_local_start, keep_local_end, stack_start) per tile."""
    if length <= patch:
        # The reference slices out of range here; we pad instead (see seamless tiling). One tile.
        return [(0, 0, length, 0)]
    gap = int(patch * (1 - overlap))
    cut = int((patch - gap) / 2)
    n = math.ceil((length - patch + gap) / gap)
    tiles = []
    for i in range(n):
        if i == n - 1:
            start = length - patch
            tiles.append((start, cut, patch, start + cut))
        elif i == 0:
            tiles.append((0, 0, patch - cut, 0))
        else:
            tiles.append((i * gap, cut, patch - cut, i * gap + cut))
    return tiles


def seamless_axis_tiles(length, tile, halo, align=8):
    """The Rust engine's plan (src/tiling.rs): origins on multiples of 8, kept cores tile - 2·halo
    apart, reads past the end mirrored; returns (origin, length, keep_start, keep_end)."""
    padded = -(-length // align) * align
    if padded <= tile:
        return [(0, padded, 0, length)]
    step = tile - 2 * halo
    tiles, keep_start, origin = [], 0, 0
    while True:
        if origin + tile >= padded:
            tiles.append((padded - tile, tile, keep_start, length))
            return tiles
        keep_end = min(origin + tile - halo, length)
        tiles.append((origin, tile, keep_start, keep_end))
        if keep_end == length:
            return tiles
        keep_start = keep_end
        origin += step


def reflect(index, length):
    period = 2 * (length - 1) if length > 1 else 1
    index %= period
    return index if index < length else period - index


@torch.no_grad()
def denoise_reference(net, movie, patch, overlap, device="cpu"):
    """§4.1 with the reference's per-tile brightness factor; output float32 in input units."""
    mean = float(movie.astype(np.float64).mean())
    x = movie.astype(np.float32) - mean
    out = np.zeros(movie.shape, np.float32)
    axes = [reference_axis_tiles(n, min(patch[i], n), overlap) for i, n in enumerate(movie.shape)]
    tiles = 0
    for ty in axes[1]:
        for tx in axes[2]:
            for tt in axes[0]:
                sizes = [min(patch[i], movie.shape[i]) for i in range(3)]
                src = x[tt[0]:tt[0] + sizes[0], ty[0]:ty[0] + sizes[1], tx[0]:tx[0] + sizes[2]]
                pred = net(torch.from_numpy(np.ascontiguousarray(src))[None, None].to(device))[0, 0].cpu().numpy()
                keep = tuple(slice(a[1], a[2]) for a in (tt, ty, tx))
                out_k = pred[keep] + mean
                raw_k = src[keep] + mean
                factor = math.sqrt(raw_k.sum() / out_k.sum()) if out_k.sum() > 0 and raw_k.sum() > 0 else 1.0
                dst = tuple(slice(a[3], a[3] + a[2] - a[1]) for a in (tt, ty, tx))
                out[dst] = out_k * factor
                tiles += 1
    return out, tiles


@torch.no_grad()
def denoise_seamless(net, movie, normalization, tile, halo, device="cpu"):
    """The Rust engine's tiling and normalisation, for implementation parity and speed at equal work."""
    if normalization["mode"] == "fixed":
        offset, scale = normalization["offset"], normalization["scale"]
    elif normalization["mode"] == "per_movie":
        # The engine's rule: mean and population std of up to 256 frames spread evenly over the movie.
        frames = movie.shape[0]
        n = min(256, frames)
        sampled = movie[[int((i + 0.5) * frames / n) for i in range(n)]].astype(np.float64)
        offset, scale = float(sampled.mean()), float(sampled.std())
        if not scale > 1e-6 * max(abs(offset), 1.0):
            scale = 1.0
    else:
        offset, scale = float(movie.astype(np.float64).mean()), normalization["scale_factor"]
    x = (movie.astype(np.float32) - offset) / scale
    out = np.zeros(movie.shape, np.float32)
    plans = [seamless_axis_tiles(n, tile[i], halo) for i, n in enumerate(movie.shape)]
    tiles = 0
    for tt in plans[0]:
        for ty in plans[1]:
            for tx in plans[2]:
                idx = [np.array([reflect(i, movie.shape[a]) for i in range(p[0], p[0] + p[1])])
                       for a, p in enumerate((tt, ty, tx))]
                src = x[np.ix_(*idx)]
                pred = net(torch.from_numpy(np.ascontiguousarray(src))[None, None].to(device))[0, 0].cpu().numpy()
                keep = tuple(slice(p[2] - p[0], p[3] - p[0]) for p in (tt, ty, tx))
                out[tt[2]:tt[3], ty[2]:ty[3], tx[2]:tx[3]] = pred[keep] * scale + offset
                tiles += 1
    return out, tiles


def denoise(args):
    torch.set_num_threads(args.threads)
    movie = read_movie(args.movie)
    net, normalization = load_network(args.model, args.fmap)
    net = net.to(args.device)
    started = time.perf_counter()
    if args.tiling == "reference":
        out, tiles = denoise_reference(net, movie, (args.patch,) * 3, args.overlap, args.device)
    else:
        out, tiles = denoise_seamless(net, movie, normalization, args.tile, args.halo, args.device)
    seconds = time.perf_counter() - started
    tifffile.imwrite(args.output, out, imagej=True, metadata={"axes": "TYX"})
    if args.uint16_out:
        # The reference's cast (§4.1 step 6, since 2024-10): astype without clipping, so values wrap.
        tifffile.imwrite(args.uint16_out, out.astype(movie.dtype), imagej=True, metadata={"axes": "TYX"})
    return {"seconds": seconds, "tiles": tiles, "voxels": int(movie.size),
            "frames_per_second": movie.shape[0] / seconds}


# ------------------------------------------------------------------------------------ benchmarks

def bench_network(args):
    torch.set_num_threads(args.threads)
    net = Network3DUnet(args.fmap).eval().to(args.device)
    x = torch.randn(1, 1, args.size, args.size, args.size, device=args.device)
    with torch.no_grad():
        net(x)
        synchronize(args.device)
        started = time.perf_counter()
        for _ in range(args.repeats):
            net(x)
        synchronize(args.device)
        seconds = (time.perf_counter() - started) / args.repeats
    return {"size": args.size, "voxels_per_second": args.size ** 3 / seconds,
            "flops_per_voxel": flops_per_voxel(args.fmap)}


def bench_train(args):
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    net = Network3DUnet(args.fmap).to(args.device)
    optimizer = torch.optim.Adam(net.parameters(), lr=5e-5, betas=(0.5, 0.999))
    x = torch.randn(1, 1, args.patch, args.patch, args.patch, device=args.device)
    y = torch.randn(1, 1, args.patch, args.patch, args.patch, device=args.device)
    times = []
    for _ in range(args.iterations + 1):
        started = time.perf_counter()
        train_step(net, optimizer, x, y)
        times.append(time.perf_counter() - started)
    return {"patch": args.patch, "seconds_per_iteration": float(np.mean(times[1:]))}


def synchronize(device):
    if str(device).startswith("cuda"):
        torch.cuda.synchronize()


def matmul_peak(args):
    torch.set_num_threads(args.threads)
    a, b = torch.randn(4096, 4096, device=args.device), torch.randn(4096, 4096, device=args.device)
    torch.mm(a, b)
    best = math.inf
    for _ in range(3):
        synchronize(args.device)
        started = time.perf_counter()
        torch.mm(a, b)
        synchronize(args.device)
        best = min(best, time.perf_counter() - started)
    return {"gflops": 2 * 4096 ** 3 / best / 1e9}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--fmap", type=int, default=16)
    parser.add_argument("--device", default="cpu", help="cpu or cuda[:N]")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("train")
    p.add_argument("movie")
    p.add_argument("-o", "--output", required=True)
    p.add_argument("--patch", type=int, default=64)
    p.add_argument("--patch-t", type=int, default=None)
    p.add_argument("--overlap", type=float, default=0.25)
    p.add_argument("--patches", type=int, default=200)
    p.add_argument("--epochs", type=int, default=None,
                   help="passes over the patch grid (default 3; with --time-budget, a cap, none by default)")
    p.add_argument("--time-budget", type=float, default=None, metavar="SECONDS",
                   help="train until this many wall-clock seconds of the training loop are spent, then save")
    p.add_argument("--max-frames", type=int, default=None)
    p.add_argument("--lr", type=float, default=5e-5)
    p.add_argument("--scale-factor", type=float, default=1.0)
    p.add_argument("--seed", type=int, default=0)
    p = sub.add_parser("denoise")
    p.add_argument("movie")
    p.add_argument("-m", "--model", required=True)
    p.add_argument("-o", "--output", required=True)
    p.add_argument("--uint16-out", default=None)
    p.add_argument("--tiling", choices=["reference", "seamless"], default="reference")
    p.add_argument("--patch", type=int, default=150)
    p.add_argument("--overlap", type=float, default=0.6)
    p.add_argument("--tile", type=lambda s: [int(v) for v in s.split(",")], default=[256, 160, 160])
    p.add_argument("--halo", type=int, default=52)
    p = sub.add_parser("bench-network")
    p.add_argument("--size", type=int, default=144)
    p.add_argument("--repeats", type=int, default=2)
    p = sub.add_parser("bench-train")
    p.add_argument("--patch", type=int, default=64)
    p.add_argument("--iterations", type=int, default=8)
    sub.add_parser("matmul-peak")
    args = parser.parse_args()
    result = {"train": train, "denoise": denoise, "bench-network": bench_network,
              "bench-train": bench_train, "matmul-peak": matmul_peak}[args.command](args)
    result["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    if args.device.startswith("cuda"):
        result["peak_gpu_mb"] = torch.cuda.max_memory_allocated() / 2 ** 20
    print(json.dumps(result))


if __name__ == "__main__":
    main()
