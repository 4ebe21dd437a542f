"""The evaluation harness: quality against ground truth, parity with a PyTorch reference, speed.

Runs everything on one machine in one go and writes a Markdown report with PNG plots:
  1. simulated two-photon movies at several photon levels (`deepcad simulate`, with truth and labels);
  2. our engine (`deepcad train` on the first 80 % of the frames, `deepcad denoise`, float32 and
     the input's uint16) and the PyTorch reference (eval/deepcad_reference.py, DeepCAD-RT's
     settings) trained on the same frames with the same number of patches and epochs;
  3. `deepcad score` for every output plus the best-width moving-average and 3-D Gaussian baselines,
     and the reference-free residual checks (the last 20 % of frames were never trained on);
  4. parity: the PyTorch implementation with our weights and our tiling must give our numbers;
  5. speed, measured in this run: end-to-end inference on a 400×160×160 uint16 movie (our default
     tiling; the reference's demo tiling 150³/0.6 and its fast 64³/0.25 setting), network
     throughput on one 144³ tile, training seconds per iteration at 64³ and 152³, peak memory,
     achieved FLOP/s against this machine's float32 matrix-multiply peak.

Usage (scripts/evaluate.sh sets up the Python environment and builds the release binary):
  python eval/evaluate.py --out docs/evaluation [--quick] [--real movie.tif]
"""

import argparse
import datetime
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import tifffile

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
REFERENCE = HERE / "deepcad_reference.py"


class Runner:
    """Runs child processes, recording wall time and each child's own peak RSS (wait4)."""

    def __init__(self, deepcad, threads, log, device="cpu"):
        self.deepcad = str(deepcad)
        self.threads = threads
        self.device = device
        self.log = log
        self.env = dict(os.environ, OMP_NUM_THREADS=str(threads))

    def run(self, args, cwd=None):
        started = time.perf_counter()
        print("$ " + " ".join(map(str, args)), flush=True)
        with open(self.log, "a") as log:
            log.write("$ " + " ".join(map(str, args)) + "\n")
            log.flush()
            child = subprocess.Popen([str(a) for a in args], stdout=subprocess.PIPE, stderr=log,
                                     cwd=cwd, env=self.env, text=True)
            stdout = child.stdout.read()
            _, status, usage = os.wait4(child.pid, 0)
            child.returncode = os.waitstatus_to_exitcode(status)
            log.write(stdout)
        seconds = time.perf_counter() - started
        if child.returncode != 0:
            sys.exit(f"evaluate: {' '.join(map(str, args))} failed with exit code {child.returncode}; see {self.log}")
        return stdout, seconds, usage.ru_maxrss / 1024

    def deepcad_cmd(self, *args):
        return self.run([self.deepcad, *args, "--quiet"])

    def compute(self):
        return ["--device", self.device, "--threads", str(self.threads)]

    def reference(self, *args):
        out, seconds, rss = self.run([sys.executable, REFERENCE, "--threads", str(self.threads),
                                      "--device", self.device, *args])
        result = json.loads(out.strip().splitlines()[-1])
        result.update(wall_seconds=seconds, child_peak_rss_mb=rss)
        return result


# ------------------------------------------------------------------------------------ quality

def quality_level(runner, work, photons, cfg):
    level = work / f"photons-{photons:g}"
    level.mkdir(parents=True, exist_ok=True)
    raw, truth, labels = level / "raw.tif", level / "truth.tif", level / "labels.tif"
    runner.deepcad_cmd("simulate", "-o", raw, "--truth", truth, "--labels", labels, "--width", cfg.width,
                       "--height", cfg.width, "--frames", cfg.frames, "--neurons", cfg.neurons,
                       "--photons", photons, "--seed", cfg.seed)
    train_frames = int(cfg.frames * 0.8)
    record = {"photons": photons, "train_frames": train_frames}

    model = level / "ours.safetensors"
    _, seconds, rss = runner.deepcad_cmd(
        "train", raw, "-o", model, "--epochs", cfg.epochs, "--patches-per-epoch", cfg.patches,
        "--patch-t", cfg.patch, "--patch-xy", cfg.patch, "--max-frames", train_frames, "--seed", cfg.seed,
        *runner.compute())
    info = json.loads(runner.run([runner.deepcad, "info", model, "--json"])[0])
    record["ours_train"] = {"seconds": seconds, "peak_rss_mb": rss, "history": info["training"]["history"]}
    outputs = {}
    for name, extra in (("ours", ["--float32"]), ("ours_uint16", [])):
        path = level / f"{name}.tif"
        _, seconds, rss = runner.deepcad_cmd("denoise", raw, "-m", model, "-o", path, *extra, *runner.compute())
        outputs[name] = path
        record[f"{name}_denoise"] = {"seconds": seconds, "peak_rss_mb": rss}

    if not cfg.skip_reference:
        ref_model = level / "reference.pth"
        record["reference_train"] = runner.reference(
            "train", raw, "-o", ref_model, "--patch", cfg.patch, "--patches", cfg.patches, "--epochs", cfg.epochs,
            "--max-frames", train_frames, "--seed", cfg.seed)
        record["reference_denoise"] = runner.reference(
            "denoise", raw, "-m", ref_model, "-o", level / "reference.tif", "--uint16-out",
            level / "reference_uint16.tif", "--tiling", "reference", "--patch", 150, "--overlap", 0.6)
        outputs["reference"] = level / "reference.tif"
        outputs["reference_uint16"] = level / "reference_uint16.tif"

    scores = level / "scores.json"
    runner.deepcad_cmd("score", "--raw", raw, "--truth", truth, "--labels", labels, "--baselines",
                       "--held-out-from", train_frames, "--json", scores,
                       *[f"{name}={path}" for name, path in outputs.items()])
    record["scores"] = json.loads(scores.read_text())
    record["paths"] = {"raw": str(raw), "truth": str(truth), "labels": str(labels),
                       **{k: str(v) for k, v in outputs.items()}}
    return record


def parity(runner, work, level_record):
    """Our weights through the PyTorch network with our tiling: must equal our float32 output."""
    level = Path(level_record["paths"]["raw"]).parent
    out = work / "parity.tif"
    meta = tifffile.TiffFile(level_record["paths"]["raw"]).series[0].shape
    tile = [min(256, -(-meta[0] // 8) * 8), -(-meta[1] // 8) * 8, -(-meta[2] // 8) * 8]
    ours = work / "parity-ours.tif"
    runner.deepcad_cmd("denoise", level_record["paths"]["raw"], "-m", level / "ours.safetensors", "-o", ours,
                       "--float32", "--tile", ",".join(map(str, tile)), *runner.compute())
    runner.reference("denoise", level_record["paths"]["raw"], "-m", level / "ours.safetensors", "-o", out,
                     "--tiling", "seamless", "--tile", ",".join(map(str, tile)))
    a, b = tifffile.imread(ours).astype(np.float64), tifffile.imread(out).astype(np.float64)
    return {"tile": tile, "max_abs_difference": float(np.abs(a - b).max()),
            "relative": float(np.abs(a - b).max() / np.abs(a).max())}


# -------------------------------------------------------------------------------------- speed

def cargo_bench(runner, phase):
    out, _, _ = runner.run(["cargo", "bench", "--quiet", "--bench", "throughput", "--", phase], cwd=ROOT)
    line = [l for l in out.splitlines() if l and not l.startswith("#")][0]
    return line


def speed(runner, work, cfg, model):
    s = {}
    movie = work / "speed-400x160x160.tif"
    runner.deepcad_cmd("simulate", "-o", movie, "--width", 160, "--height", 160, "--frames", 400, "--photons", 5)
    voxels = 400 * 160 * 160
    _, seconds, rss = runner.deepcad_cmd("denoise", movie, "-m", model, "-o", work / "speed-ours.tif", *runner.compute())
    s["ours_default"] = {"seconds": seconds, "peak_rss_mb": rss, "voxels_per_second": voxels / seconds}
    if not cfg.skip_reference:
        ref_model = Path(model).with_name("reference.pth")
        for name, args in (("reference_demo_150_0.6", ["--tiling", "reference", "--patch", 150, "--overlap", 0.6]),
                           ("reference_64_0.25", ["--tiling", "reference", "--patch", 64, "--overlap", 0.25]),
                           ("pytorch_our_tiling", ["--tiling", "seamless", "--tile", "256,160,160", "-m", model])):
            model_args = [] if "-m" in args else ["-m", ref_model]
            r = runner.reference("denoise", movie, *model_args, *args, "-o", work / f"speed-{name}.tif")
            s[name] = {"seconds": r["wall_seconds"], "compute_seconds": r["seconds"], "tiles": r["tiles"],
                       "peak_rss_mb": r["child_peak_rss_mb"], "voxels_per_second": voxels / r["wall_seconds"]}
        s["reference_network"] = runner.reference("bench-network", "--size", 144)
        for patch in (64, 152):
            s[f"reference_train_{patch}"] = runner.reference("bench-train", "--patch", patch,
                                                             "--iterations", 6 if patch == 64 else 2)
        s["matmul"] = runner.reference("matmul-peak")
    line = cargo_bench(runner, "network")
    s["ours_network"] = {"line": line, "voxels_per_second": float(re.search(r"([\d.]+) Mvoxel/s", line).group(1)) * 1e6,
                         "peak_rss_mb": float(re.search(r"peak RSS (\d+) MB", line).group(1))}
    for phase, patch in (("train64", 64), ("train150", 152)):
        line = cargo_bench(runner, phase)
        s[f"ours_train_{patch}"] = {"line": line,
                                    "seconds_per_iteration": float(re.search(r"([\d.]+) s/iteration", line).group(1)),
                                    "peak_rss_mb": float(re.search(r"peak RSS (\d+) MB", line).group(1))}
    return s


# ------------------------------------------------------------------------------------- report

def entry(level, name):
    for e in level["scores"]["entries"]:
        if e["name"] == name:
            return e
    return None


LABELS = {
    "raw": "raw",
    "moving_average": "moving average (best width)",
    "gaussian_3d": "3-D Gaussian (best σ)",
    "ours": "DeepCAD Rust, float32",
    "ours_uint16": "DeepCAD Rust, uint16 (rounded, clipped)",
    "reference": "PyTorch reference, float32",
    "reference_uint16": "PyTorch reference, uint16 (its cast: wraps)",
}


def fmt(v, digits=2):
    return "∞" if v is None else f"{v:.{digits}f}"


def plots(levels, speed_numbers, out):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    photons = [l["photons"] for l in levels]
    for name, style in (("raw", "k:"), ("moving_average", "c--"), ("gaussian_3d", "g--"), ("ours", "r-o"),
                        ("ours_uint16", "r:x"), ("reference", "b-s"), ("reference_uint16", "b:+")):
        values = [entry(l, name)["scores"]["snr_db"] if entry(l, name) else None for l in levels]
        if all(v is not None for v in values):
            ax.plot(photons, values, style, label=LABELS[name])
    ax.set_xscale("log")
    ax.set_xlabel("photons per pixel per frame (bright soma)")
    ax.set_ylabel("SNR vs ground truth (dB)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out / "snr_vs_photons.png", dpi=110)
    plt.close(fig)

    # Example frames: one row per photon level.
    names = [n for n in ("raw", "gaussian_3d", "ours", "reference", "truth") if n in levels[0]["paths"] or n == "gaussian_3d"]
    fig, axes = plt.subplots(len(levels), len(names), figsize=(2.2 * len(names), 2.3 * len(levels)), squeeze=False)
    for row, level in enumerate(levels):
        frame = level["train_frames"] + 20  # a held-out frame
        truth = tifffile.imread(level["paths"]["truth"])[frame]
        lo, hi = np.percentile(truth, [0.5, 99.5])
        for col, name in enumerate(names):
            if name == "gaussian_3d":
                image = gaussian_frame(level, frame)
            else:
                image = tifffile.imread(level["paths"][name])[frame]
            axes[row][col].imshow(image, cmap="gray", vmin=lo, vmax=hi)
            axes[row][col].set_xticks([])
            axes[row][col].set_yticks([])
            if row == 0:
                axes[row][col].set_title({"gaussian_3d": "3-D Gaussian", "ours": "DeepCAD Rust",
                                          "reference": "PyTorch ref."}.get(name, name), fontsize=9)
        axes[row][0].set_ylabel(f"{level['photons']:g} photons", fontsize=9)
    fig.tight_layout()
    fig.savefig(out / "frames.png", dpi=100)
    plt.close(fig)

    # Traces of a few neurons at the middle photon level.
    level = levels[len(levels) // 2]
    labels = tifffile.imread(level["paths"]["labels"])
    movies = {n: tifffile.imread(level["paths"][n]) for n in ("truth", "raw", "ours", "reference") if n in level["paths"]}
    ids = [i for i in np.unique(labels) if i > 0]
    variability = {i: movies["truth"][:, labels == i].mean(axis=1).std() for i in ids}
    chosen = sorted(ids, key=lambda i: -variability[i])[:3]
    fig, axes = plt.subplots(len(chosen), 1, figsize=(8, 2.0 * len(chosen)), squeeze=False)
    for ax, neuron in zip(axes[:, 0], chosen):
        for name, style in (("raw", "0.7"), ("truth", "k"), ("reference", "b"), ("ours", "r")):
            if name in movies:
                ax.plot(movies[name][:, labels == neuron].mean(axis=1), color=style, lw=0.9,
                        label={"ours": "DeepCAD Rust", "reference": "PyTorch ref."}.get(name, name))
        ax.axvline(level["train_frames"], color="0.5", ls="--", lw=0.8)
        ax.set_ylabel(f"neuron {int(neuron)}", fontsize=8)
    axes[0, 0].legend(fontsize=7, ncol=4, loc="upper right")
    axes[-1, 0].set_xlabel(f"frame ({level['photons']:g} photons; frames right of the dashed line were never trained on)")
    fig.tight_layout()
    fig.savefig(out / "traces.png", dpi=100)
    plt.close(fig)

    if speed_numbers and "reference_demo_150_0.6" in speed_numbers:
        s = speed_numbers
        fig, (a1, a2) = plt.subplots(1, 2, figsize=(9, 3.4))
        rows = [("ours, default tiling", s["ours_default"]["seconds"], "r"),
                ("PyTorch, our tiling", s["pytorch_our_tiling"]["seconds"], "m"),
                ("reference, 64³/0.25", s["reference_64_0.25"]["seconds"], "c"),
                ("reference, 150³/0.6 (demo)", s["reference_demo_150_0.6"]["seconds"], "b")]
        a1.barh([r[0] for r in rows], [r[1] for r in rows], color=[r[2] for r in rows])
        a1.set_xlabel("seconds, 400×160×160 uint16 movie")
        a1.invert_yaxis()
        rows = [("ours 64³", s["ours_train_64"]["seconds_per_iteration"], "r"),
                ("reference 64³", s["reference_train_64"]["seconds_per_iteration"], "b"),
                ("ours 152³", s["ours_train_152"]["seconds_per_iteration"], "r"),
                ("reference 152³", s["reference_train_152"]["seconds_per_iteration"], "b")]
        a2.barh([r[0] for r in rows], [r[1] for r in rows], color=[r[2] for r in rows])
        a2.set_xlabel("training seconds per iteration (batch 1)")
        a2.invert_yaxis()
        fig.tight_layout()
        fig.savefig(out / "speed.png", dpi=100)
        plt.close(fig)


def gaussian_frame(level, frame):
    """The 3-D Gaussian baseline's frame, recomputed with the width `deepcad score` chose."""
    from scipy.ndimage import gaussian_filter
    source = entry(level, "gaussian_3d")["source"]
    st, sxy = map(float, re.findall(r"σ\w+ ([\d.]+)", source))
    raw = tifffile.imread(level["paths"]["raw"]).astype(np.float32)
    lo, hi = max(0, frame - int(3 * st) - 1), frame + int(3 * st) + 2
    return gaussian_filter(raw[lo:hi], (st, sxy, sxy), mode="nearest", truncate=3.0)[frame - lo]


def write_report(results, out):
    levels, s, p = results["levels"], results.get("speed"), results.get("parity")
    lines = ["# DeepCAD evaluation report", "",
             f"Generated {results['date']} by `{results['command']}` in {results['minutes']:.1f} min on "
             f"{results['machine']} ({results['threads']} threads, {results['config']['device']}). {results['deepcad_version']}, "
             f"PyTorch {results['torch_version']} for the reference.", "",
             "Data: simulated two-photon calcium movies (`deepcad simulate`: somata with GCaMP-like transients, "
             f"neuropil, background, Poisson–Gaussian noise), {results['config']['width']}×{results['config']['width']} px, "
             f"{results['config']['frames']} frames, {results['config']['neurons']} neurons, at each photon level. "
             f"Both implementations train on the first 80 % of the frames ({results['config']['epochs']} epochs × "
             f"{results['config']['patches']} patches of {results['config']['patch']}³, f = 16) and denoise the whole "
             "movie; the last 20 % were never seen in training. Ours uses its defaults (statistics-based "
             "normalisation, lr 5e-4, seamless tiling); the PyTorch reference uses DeepCAD-RT's (stack-mean "
             "subtraction, lr 5e-5, tiling 150³ with overlap 0.6 and the per-tile brightness factor). Baselines "
             "are scored at the width that is best against the truth (an oracle choice that flatters them).", "",
             "## Headline: SNR gain over the raw movie (dB)", "",
             "| photons | raw SNR | DeepCAD Rust | PyTorch reference | best baseline | trace r: raw / ours / reference / best baseline |",
             "|---|---|---|---|---|---|"]
    for l in levels:
        raw = entry(l, "raw")["scores"]["snr_db"]
        best = max(("moving_average", "gaussian_3d"), key=lambda n: entry(l, n)["scores"]["snr_db"])
        ref = entry(l, "reference")
        lines.append(f"| {l['photons']:g} | {raw:.2f} | **{entry(l, 'ours')['scores']['snr_db'] - raw:+.2f}** | "
                     f"{'%+.2f' % (ref['scores']['snr_db'] - raw) if ref else '—'} | "
                     f"{entry(l, best)['scores']['snr_db'] - raw:+.2f} ({entry(l, best)['source']}) | "
                     + " / ".join(fmt(entry(l, n)["scores"]["trace_correlation_median"], 3) if entry(l, n) else "—"
                                  for n in ("raw", "ours", "reference", best)) + " |")
    lines += ["", "![SNR versus photon level](snr_vs_photons.png)", ""]
    for l in levels:
        lines += [f"## {l['photons']:g} photons per pixel per frame", "",
                  "| output | SNR dB | invariant SNR dB | PSNR dB | mean SSIM | pixel r | trace r (median) |",
                  "|---|---|---|---|---|---|---|"]
        for e in l["scores"]["entries"]:
            sc = e["scores"]
            label = LABELS.get(e["name"], e["name"])
            if e["name"] in ("moving_average", "gaussian_3d"):
                label += f" — {e['source']}"
            lines.append(f"| {label} | {fmt(sc['snr_db'])} | {fmt(sc['invariant_snr_db'])} | {fmt(sc['psnr_db'])} | "
                         f"{fmt(sc['ssim'], 3)} | {fmt(sc['pearson'], 3)} | {fmt(sc['trace_correlation_median'], 3)} |")
        lines.append("")
    lines += ["![Example frames (a held-out frame)](frames.png)", "", "![Neuron traces](traces.png)", "",
              "## Reference-free checks (what a user without ground truth can look at)", "",
              "The residual raw − output should be noise: lag-1 temporal autocorrelation near 0, variance rising "
              "linearly with intensity with the detector's gain (the simulation's gain is 2.0 counts per photon), "
              "and frames never trained on (the last 20 %) no worse than training frames (ratio ≈ 1).", "",
              "| photons | output | residual lag-1 r | noise gain | variance~intensity r | held-out / training RMS |",
              "|---|---|---|---|---|---|"]
    for l in levels:
        for e in l["scores"]["entries"]:
            r = e["residual"]
            if r is None:
                continue
            lines.append(f"| {l['photons']:g} | {LABELS.get(e['name'], e['name'])} | {r['lag1_autocorrelation']:.3f} | "
                         f"{r['noise_gain']:.2f} | {r['variance_intensity_correlation']:.3f} | "
                         f"{r['held_out']['ratio']:.3f} |")
    if results.get("real"):
        lines += ["", "### Real movie", "", "```", results["real"].strip(), "```"]
    if p:
        lines += ["", "## Parity with the PyTorch implementation", "",
                  f"Our trained weights run through the PyTorch network with our tiling (tile {p['tile']}, halo 52, "
                  f"reflect padding): largest absolute difference to our float32 output **{p['max_abs_difference']:.3g}** "
                  f"({p['relative']:.2g} of the output's largest value) — same network, same numbers."]
    if s:
        lines += ["", "## Speed and memory (this machine, CPU, measured in this run)", ""]
        lines += ["| measurement | ours | PyTorch reference | ratio (reference / ours) |", "|---|---|---|---|"]
        o = s["ours_default"]
        if "reference_demo_150_0.6" in s:
            for name, label in (("reference_demo_150_0.6", "its demo tiling 150³, overlap 0.6"),
                                ("reference_64_0.25", "its fast setting 64³, overlap 0.25"),
                                ("pytorch_our_tiling", "our tiling in PyTorch (same tiles)")):
                r = s[name]
                lines.append(f"| 400×160×160 uint16, end to end: ours default tiling vs {label} | {o['seconds']:.1f} s, "
                             f"{o['voxels_per_second'] / 1e6:.2f} Mvoxel/s, {o['peak_rss_mb']:.0f} MB | "
                             f"{r['seconds']:.1f} s ({r['tiles']} tiles), {r['peak_rss_mb']:.0f} MB | "
                             f"**{r['seconds'] / o['seconds']:.2f}×** time, {r['peak_rss_mb'] / o['peak_rss_mb']:.2f}× memory |")
            rn, on = s["reference_network"], s["ours_network"]
            lines.append(f"| network alone, one 144³ tile (no autograd) | {on['voxels_per_second'] / 1e6:.2f} Mvoxel/s, "
                         f"{on['peak_rss_mb']:.0f} MB | {rn['voxels_per_second'] / 1e6:.2f} Mvoxel/s, {rn['peak_rss_mb']:.0f} MB | "
                         f"{on['voxels_per_second'] / rn['voxels_per_second']:.2f}× throughput |")
            for patch in (64, 152):
                ot, rt = s[f"ours_train_{patch}"], s[f"reference_train_{patch}"]
                lines.append(f"| training {patch}³, f = 16, batch 1 | {ot['seconds_per_iteration']:.2f} s/iteration, "
                             f"{ot['peak_rss_mb']:.0f} MB | {rt['seconds_per_iteration']:.2f} s/iteration, "
                             f"{rt['peak_rss_mb']:.0f} MB | **{rt['seconds_per_iteration'] / ot['seconds_per_iteration']:.2f}×** |")
            flops = rn["flops_per_voxel"]
            peak = s["matmul"]["gflops"]
            lines += ["", f"Network cost: {flops / 1e3:.1f} kFLOP per output voxel per forward pass (f = 16, computed "
                      f"layer by layer). Measured float32 matrix-multiply peak of this machine: {peak:.0f} GFLOP/s. "
                      f"Achieved: ours {on['voxels_per_second'] * flops / 1e9:.0f} GFLOP/s "
                      f"({on['voxels_per_second'] * flops / 1e9 / peak:.0%} of peak), PyTorch "
                      f"{rn['voxels_per_second'] * flops / 1e9:.0f} GFLOP/s ({rn['voxels_per_second'] * flops / 1e9 / peak:.0%})."]
        lines += ["", "![Speed](speed.png)", "",
                  "Memory is each process's peak resident set (wait4). Ours runs the network in slabs within a 1 GiB "
                  "activation budget; training numbers come from `cargo bench --bench throughput` phases "
                  "`train64`/`train150` and the reference's `bench-train` (random data, timed steps after a warm-up)."]
    lines += ["", "## GPU", "", results.get("gpu_note", "No CUDA GPU was available to this run; the GPU table "
              "(including DeepCAD-RT's 490×490×300 benchmark with 150³ patches and 40 % overlap) is produced by the "
              "same command on a machine with one.")]
    (out / "report.md").write_text("\n".join(lines) + "\n")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "evaluation")
    parser.add_argument("--work", type=Path, default=Path("/tmp/deepcad-evaluation"))
    parser.add_argument("--deepcad", type=Path, default=ROOT / "target" / "release" / "deepcad")
    parser.add_argument("--photons", default="50,5,1")
    parser.add_argument("--width", type=int, default=128)
    parser.add_argument("--frames", type=int, default=600)
    parser.add_argument("--neurons", type=int, default=30)
    parser.add_argument("--patch", type=int, default=64)
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--patches", type=int, default=64)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument("--device", default="cpu", help="cpu, or cuda[:N] for the GPU table (both implementations)")
    parser.add_argument("--skip-reference", action="store_true", help="ours and the baselines only")
    parser.add_argument("--skip-speed", action="store_true")
    parser.add_argument("--real", type=Path, help="also train/denoise this real movie and run the reference-free checks")
    parser.add_argument("--quick", action="store_true", help="tiny sizes, to check the harness itself")
    cfg = parser.parse_args()
    if cfg.quick:
        cfg.width, cfg.frames, cfg.neurons, cfg.epochs, cfg.patches, cfg.photons = 64, 200, 8, 1, 4, "20,2"
    started = time.time()
    if cfg.work.exists():
        shutil.rmtree(cfg.work)
    cfg.work.mkdir(parents=True)
    cfg.out.mkdir(parents=True, exist_ok=True)
    runner = Runner(cfg.deepcad, cfg.threads, cfg.work / "commands.log", cfg.device)

    import torch
    results = {
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "command": " ".join(["scripts/evaluate.sh", *sys.argv[1:]]),
        "machine": machine_name(),
        "threads": cfg.threads,
        "deepcad_version": runner.run([cfg.deepcad, "--version"])[0].strip(),
        "torch_version": torch.__version__,
        "config": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(cfg).items()},
        "levels": [quality_level(runner, cfg.work, float(p), cfg) for p in cfg.photons.split(",")],
    }
    middle = results["levels"][len(results["levels"]) // 2]
    if not cfg.skip_reference:
        results["parity"] = parity(runner, cfg.work, middle)
    if not cfg.skip_speed:
        results["speed"] = speed(runner, cfg.work, cfg, Path(middle["paths"]["raw"]).parent / "ours.safetensors")
    if cfg.device.startswith("cuda") and not cfg.skip_reference:
        results["gpu_note"] = rt_benchmark(runner, cfg.work, Path(middle["paths"]["raw"]).parent)
    if cfg.real:
        results["real"] = real_movie(runner, cfg)
    results["minutes"] = (time.time() - started) / 60
    plots(results["levels"], results.get("speed"), cfg.out)
    write_report(results, cfg.out)
    (cfg.out / "results.json").write_text(json.dumps(results, indent=1, default=str))
    print(f"evaluate: wrote {cfg.out / 'report.md'} in {results['minutes']:.1f} min")


def real_movie(runner, cfg):
    """A movie without ground truth: train on its first 80 %, denoise, reference-free checks."""
    frames = tifffile.TiffFile(cfg.real).series[0].shape[0]
    train_frames = int(frames * 0.8)
    patch_t = max(8, min(cfg.patch, (train_frames // 2) // 8 * 8))
    model, out = cfg.work / "real.safetensors", cfg.work / "real-denoised.tif"
    runner.deepcad_cmd("train", cfg.real, "-o", model, "--epochs", cfg.epochs, "--patches-per-epoch", cfg.patches,
                       "--patch-t", patch_t, "--max-frames", train_frames, *runner.compute())
    runner.deepcad_cmd("denoise", cfg.real, "-m", model, "-o", out, "--float32", *runner.compute())
    table, _, _ = runner.run([runner.deepcad, "score", "--raw", cfg.real, "--held-out-from", train_frames,
                              f"deepcad={out}"])
    return f"{cfg.real} ({frames} frames, trained on the first {train_frames}, patch_t {patch_t})\n{table}"


def rt_benchmark(runner, work, level):
    """DeepCAD-RT's own GPU benchmark size: 490×490×300, patch 150³ with 40 % overlap (75 tiles)."""
    movie = work / "rt-490x490x300.tif"
    runner.deepcad_cmd("simulate", "-o", movie, "--width", 490, "--height", 490, "--frames", 300, "--photons", 5)
    _, ours, ours_rss = runner.deepcad_cmd("denoise", movie, "-m", level / "ours.safetensors", "-o",
                                           work / "rt-ours.tif", *runner.compute())
    ref = runner.reference("denoise", movie, "-m", level / "reference.pth", "-o", work / "rt-ref.tif",
                           "--tiling", "reference", "--patch", 150, "--overlap", 0.4)
    return (f"On {runner.device}: DeepCAD-RT's benchmark movie 490×490×300 — ours (default tiling) {ours:.1f} s, "
            f"peak RSS {ours_rss:.0f} MB; PyTorch reference (150³, overlap 0.4, {ref['tiles']} tiles) "
            f"{ref['wall_seconds']:.1f} s, peak GPU memory {ref.get('peak_gpu_mb', 0):.0f} MB "
            f"(ratio {ref['wall_seconds'] / ours:.2f}×). The paper reports ≈8 s on an RTX 3090.")


def machine_name():
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return f"{line.split(':', 1)[1].strip()}, {os.cpu_count()} cores"
    except OSError:
        pass
    return platform.processor() or platform.machine()


if __name__ == "__main__":
    main()
