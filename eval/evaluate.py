"""The evaluation harness: quality against ground truth, parity with a PyTorch reference, speed.

Runs everything on one machine in one go and writes a Markdown report with PNG plots:
  1. simulated two-photon movies at several photon levels (`deepcad simulate`, with truth and labels),
     each level for several seeds (the seed of the simulation and of both trainings);
  2. our engine (`deepcad train` on the first 80 % of the frames, `deepcad denoise` with its default
     output type and with the input's type) and the PyTorch reference (eval/deepcad_reference.py,
     DeepCAD-RT's settings) trained on the same frames, either
       * with `--budget SECONDS` (the headline setting): ours with its defaults and
         `--time-budget SECONDS` only, the reference for the same wall-clock time that our training
         actually took, or
       * without it: both with the same patch size, number of patches and epochs;
  3. `deepcad score` for every output plus the best-width moving-average and 3-D Gaussian baselines
     (best by pixel SNR and best by neuron-trace correlation: oracle choices), and the reference-free
     residual checks (the last 20 % of frames were never trained on); a headline table with the mean
     and range over seeds and a verdict: ours beats the reference and the best baseline at every seed;
     spike inference (OASIS AR(2) on each neuron's trace, eval/spikes.py) scored against the true
     spikes for every output, every baseline and the clean movie (eval/spike_harness.py);
  4. parity: the PyTorch implementation with our weights and our tiling must give our numbers;
  5. speed, measured in this run: end-to-end inference on a 400×160×160 uint16 movie (our default
     tiling; the reference's demo tiling 150³/0.6 and its fast 64³/0.25 setting), network
     throughput on one 144³ tile, training seconds per iteration at 64³ and 152³, peak memory,
     achieved FLOP/s against this machine's float32 matrix-multiply peak.

With --spikes-suite it runs the spike-focused movies instead (fast indicator at 7.5/15/30/60 Hz,
sparse single spikes, one-photon-like; two photon levels) and writes their report (default
docs/evaluation/spikes): steps 2, 3 and the spike scores, no parity or speed.

Usage (scripts/evaluate.sh sets up the Python environment and builds the release binary):
  python eval/evaluate.py --out docs/evaluation [--budget 900] [--seeds 1,2] [--photons 50,5,1,0.5]
                          [--quick] [--skip-reference] [--skip-speed] [--real movie.tif] [--spikes-suite]
"""

import argparse
import datetime
import json
import math
import os
import platform
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

# This process's own numerical work is spike inference: OASIS inverts many tiny matrices, which a
# BLAS thread pool slowed about 5× on this 2-core machine (16 s against 3 s for one level's
# baselines). One BLAS thread here, set before numpy loads it; the children (deepcad, the PyTorch
# reference) get the environment as it was.
CHILD_ENVIRONMENT = dict(os.environ)
for _variable in ("OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_variable, "1")

import numpy as np
import tifffile

import event_restoration
import spike_harness

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
        self.env = dict(CHILD_ENVIRONMENT, OMP_NUM_THREADS=str(threads))

    def run(self, args, cwd=None):
        """Returns (stdout, wall seconds, peak RSS MB); the child's stderr goes to the log and is
        kept in self.last_stderr."""
        started = time.perf_counter()
        print("$ " + " ".join(map(str, args)), flush=True)
        with open(self.log, "a") as log:
            log.write("$ " + " ".join(map(str, args)) + "\n")
            log.flush()
            stderr_from = log.tell()
            child = subprocess.Popen([str(a) for a in args], stdout=subprocess.PIPE, stderr=log,
                                     cwd=cwd, env=self.env, text=True)
            stdout = child.stdout.read()
            _, status, usage = os.wait4(child.pid, 0)
            child.returncode = os.waitstatus_to_exitcode(status)
            with open(self.log) as written:
                written.seek(stderr_from)
                self.last_stderr = written.read()
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

def our_iterations(stderr):
    """Training iterations from `deepcad train`'s log lines (batch 1 by default): the training-patch
    count per epoch, the epoch lines, and the time-budget stop line; failing those, the sum over
    epochs of seconds × iterations/s."""
    per_epoch = [round(float(sec) * float(rate)) for sec, rate in
                 re.findall(r"^epoch \d+(?:/\d+)?: .*?\(([\d.]+) s, ([\d.]+) iterations/s", stderr, re.M)]
    patches = re.search(r"(\d+) training and \d+ validation patches", stderr)
    stop = re.search(r"stopped in epoch \d+ after (\d+) of (\d+) iterations", stderr)
    if stop:
        full = int(stop.group(2))
    elif patches:
        full = int(patches.group(1))
    else:
        return sum(per_epoch), len(per_epoch)
    return (len(per_epoch) - (1 if stop else 0)) * full + (int(stop.group(1)) if stop else 0), len(per_epoch)


def method_outputs(cfg):
    """(method, output name) per model to train: without --methods one model, the engine's default
    method (no --method flag), named "ours"; with it, the first method is "ours" and each other one
    "ours_<method>" (scored like ours, on the same movie, with the same settings)."""
    if not cfg.methods:
        return [(None, "ours")]
    methods = cfg.methods.split(",")
    return [(m, "ours" if i == 0 else f"ours_{m.replace('-', '_')}") for i, m in enumerate(methods)]


ENGINE_RESTORE_K = event_restoration.ENGINE_K
"""The engine's event-restoration threshold (noise SDs; src/infer/event_restoration.rs): with this K,
--restore-events scores `deepcad denoise --restore-events` itself rather than the Python experiment."""


def sample_type(path):
    return str(tifffile.TiffFile(path).series[0].dtype)


def quality_level(runner, work, photons, seed, cfg, scenario=None):
    """One simulated movie, trained on and scored. `scenario`: a spike-suite movie (its name and
    extra `deepcad simulate` flags, spike_harness.SPIKE_SUITE), or None for the standard movie."""
    prefix = f"{scenario['name']}-" if scenario else ""
    level = work / f"{prefix}photons-{photons:g}-seed-{seed}"
    level.mkdir(parents=True, exist_ok=True)
    raw, truth, labels, spikes = level / "raw.tif", level / "truth.tif", level / "labels.tif", level / "spikes.csv"
    runner.deepcad_cmd("simulate", "-o", raw, "--truth", truth, "--labels", labels, "--spikes", spikes,
                       "--width", cfg.width, "--height", cfg.width, "--frames", cfg.frames, "--neurons", cfg.neurons,
                       "--photons", photons, "--seed", seed, *(scenario["flags"] if scenario else []))
    train_frames = int(cfg.frames * 0.8)
    record = {"photons": photons, "seed": seed, "train_frames": train_frames}
    if scenario:
        record.update(scenario=scenario["name"], scenario_label=scenario["label"],
                      simulate_flags=scenario["flags"])

    # Ours. With a budget: its defaults plus only the budget, the frames and the seed. With --methods,
    # one model per method, same settings and movie: the first is "ours", the others extra outputs.
    if cfg.budget:
        settings = ["--time-budget", f"{cfg.budget:g}s"]
    else:
        settings = ["--epochs", cfg.epochs, "--patches-per-epoch", cfg.patches, "--patch-t", cfg.patch,
                    "--patch-xy", cfg.patch]
    outputs = {}
    record["extra_outputs"] = []
    for method, name in method_outputs(cfg):
        model = level / f"{name}.safetensors"
        arguments = [*settings, *(["--method", method] if method else [])]
        _, seconds, rss = runner.run([runner.deepcad, "train", raw, "-o", model, *arguments,
                                      "--max-frames", train_frames, "--seed", seed, *runner.compute()])
        iterations, epochs = our_iterations(runner.last_stderr)
        info = json.loads(runner.run([runner.deepcad, "info", model, "--json"])[0])
        record[f"{name}_train"] = {"seconds": seconds, "peak_rss_mb": rss, "iterations": iterations,
                                   "epochs": epochs, "method": method, "arguments": [str(a) for a in arguments],
                                   "settings": info["training"].get("settings"),
                                   "best_epoch": info["training"].get("best_epoch"),
                                   "history": info["training"]["history"]}
        # The input's type only for the headline model: the cast does not depend on the method.
        kinds = (("ours", "auto"), ("ours_input_type", "input")) if name == "ours" else ((name, "auto"),)
        for out_name, output_type in kinds:
            path = level / f"{out_name}.tif"
            _, seconds, rss = runner.deepcad_cmd("denoise", raw, "-m", model, "-o", path, "--output-type",
                                                 output_type, *runner.compute())
            outputs[out_name] = path
            record[f"{out_name}_denoise"] = {"seconds": seconds, "peak_rss_mb": rss, "output_type": output_type,
                                             "sample_type": sample_type(path)}
        if name != "ours":
            record["extra_outputs"].append(name)
        if cfg.restore_events is not None:
            restored = level / f"{name}_restored.tif"
            if cfg.restore_events == ENGINE_RESTORE_K:
                # What ships: the engine's `deepcad denoise --restore-events` (threshold ENGINE_RESTORE_K, cell map).
                _, seconds, rss = runner.deepcad_cmd("denoise", raw, "-m", model, "-o", restored,
                                                     "--restore-events", *runner.compute())
                record[f"{name}_restored_denoise"] = {"seconds": seconds, "peak_rss_mb": rss, "engine": True,
                                                      "sample_type": sample_type(restored)}
            else:  # another threshold: the Python experiment (eval/event_restoration.py) on this output
                tifffile.imwrite(restored, event_restoration.restore_events(
                    tifffile.imread(raw), tifffile.imread(outputs[name]), cfg.restore_events))
                record[f"{name}_restored_denoise"] = {"engine": False, "sample_type": sample_type(restored)}
            outputs[f"{name}_restored"] = restored
            record["extra_outputs"].append(f"{name}_restored")

    # The built-in model as it ships, without training on this movie (issue 23 item 4's comparison).
    path = level / "builtin.tif"
    _, seconds, rss = runner.deepcad_cmd("denoise", raw, "-m", "default", "-o", path, *runner.compute())
    outputs["builtin"] = path
    record["builtin_denoise"] = {"seconds": seconds, "peak_rss_mb": rss, "sample_type": sample_type(path)}
    record["extra_outputs"].append("builtin")

    if not cfg.skip_reference:
        ref_model = level / "reference.pth"
        # The reference's own settings (patch grid overlap 0.25, lr 5e-5, 0.5·L1 + 0.5·MSE, stack-mean
        # subtraction); the patch is 64³ (DeepCAD-RT's 150³ does not fit the simulated movies).
        if cfg.budget:
            # The same wall clock: our whole training process (start-up and checks included) becomes
            # the reference's training-loop budget, so the reference gets slightly more, not less.
            settings = ["--patch", cfg.patch, "--time-budget", f"{record['ours_train']['seconds']:.3f}"]
        else:
            settings = ["--patch", cfg.patch, "--patches", cfg.patches, "--epochs", cfg.epochs]
        record["reference_train"] = runner.reference(
            "train", raw, "-o", ref_model, *settings, "--max-frames", train_frames, "--seed", seed)
        record["reference_train"]["arguments"] = [str(a) for a in settings]
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
    record["paths"] = {"raw": str(raw), "truth": str(truth), "labels": str(labels), "spikes": str(spikes),
                       **{k: str(v) for k, v in outputs.items()}}
    record["spikes"] = spike_harness.spike_scores(record)
    print(f"spikes: {scenario['name'] + ', ' if scenario else ''}{photons:g} photons, seed {seed}: median spike r raw "
          f"{spike_harness.fmt(record['spikes']['raw']['r'])}, ours {spike_harness.fmt(record['spikes']['ours']['r'])}, "
          f"clean {spike_harness.fmt(record['spikes']['clean']['r'])} ({record['spikes']['_seconds']:.0f} s)", flush=True)
    record["metrics"] = run_metrics(record)
    return record


SNR_BASELINES = ("moving_average", "gaussian_3d")
METRICS = ("snr", "trace", "spike_r", "spike_f1")
TRACE_BASELINES = ("moving_average", "gaussian_3d", "moving_average_for_traces", "gaussian_3d_for_traces")


def run_metrics(record):
    """The headline numbers of one run: SNR and median trace r of raw, ours, the reference and the
    best baseline (by SNR among the SNR-chosen widths; by trace r among all four baseline entries);
    spike r and event F1 of the same plus the clean ceiling (best baseline among every baseline
    entry, spike-oracle widths included: spike_harness.spike_metrics)."""
    def value(name, key):
        e = entry(record, name)
        if e is None or e["scores"] is None:
            return None
        v = e["scores"][key]
        return math.inf if v is None and key == "snr_db" else v

    def best(names, key):
        present = [n for n in names if value(n, key) is not None]
        return max(present, key=lambda n: value(n, key)) if present else None

    best_snr, best_trace = best(SNR_BASELINES, "snr_db"), best(TRACE_BASELINES, "trace_correlation_median")
    m = {"snr": {}, "trace": {}, "best_baseline_snr": best_snr, "best_baseline_trace": best_trace,
         "best_baseline_snr_source": entry(record, best_snr)["source"] if best_snr else None,
         "best_baseline_trace_source": entry(record, best_trace)["source"] if best_trace else None}
    for name in ("raw", "ours", "ours_input_type", "reference", "reference_uint16", *record.get("extra_outputs", [])):
        m["snr"][name] = value(name, "snr_db")
        m["trace"][name] = value(name, "trace_correlation_median")
    m["snr"]["best_baseline"] = value(best_snr, "snr_db") if best_snr else None
    m["trace"]["best_baseline"] = value(best_trace, "trace_correlation_median") if best_trace else None
    m.update(spike_harness.spike_metrics(record))
    for metric in METRICS:
        ours, ref, base = m[metric]["ours"], m[metric]["reference"], m[metric]["best_baseline"]
        m[f"ours_beats_baseline_{metric}"] = ours is not None and base is not None and ours > base
        m[f"ours_beats_reference_{metric}"] = None if ref is None else (ours is not None and ours > ref)
    return m


def summarize(runs, photon_levels):
    """Per photon level: mean, min and max over seeds of every headline number, and the verdicts
    (true only if ours beats the reference and the best baseline at every seed)."""
    summary = []
    for photons in photon_levels:
        level_runs = [r for r in runs if r["photons"] == photons]
        item = {"photons": photons, "seeds": [r["seed"] for r in level_runs]}
        for metric in METRICS:
            item[metric] = {}
            for name in level_runs[0]["metrics"][metric]:
                values = [r["metrics"][metric][name] for r in level_runs]
                if any(v is None for v in values):
                    continue
                item[metric][name] = {"mean": float(np.mean(values)), "min": float(min(values)),
                                      "max": float(max(values)), "values": values}
            beats_ref = [r["metrics"][f"ours_beats_reference_{metric}"] for r in level_runs]
            beats_base = [r["metrics"][f"ours_beats_baseline_{metric}"] for r in level_runs]
            item[f"ours_beats_baseline_{metric}"] = all(beats_base)
            item[f"ours_beats_reference_{metric}"] = None if None in beats_ref else all(beats_ref)
            item[f"ours_wins_{metric}"] = all(beats_base) and all(b is not False for b in beats_ref)
        summary.append(item)
    return summary


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
    "moving_average": "moving average (best width for SNR)",
    "moving_average_for_traces": "moving average (best width for traces)",
    "gaussian_3d": "3-D Gaussian (best σ for SNR)",
    "gaussian_3d_for_traces": "3-D Gaussian (best σ for traces)",
    "ours": "DeepCAD Rust, default output",
    "ours_input_type": "DeepCAD Rust, input's type (rounded, clipped)",
    "builtin": "DeepCAD Rust, built-in model (no training on the movie)",
    "ours_restored": "DeepCAD Rust, default output, events restored",
    "reference": "PyTorch reference, float32",
    "reference_uint16": "PyTorch reference, uint16 (its cast: wraps)",
    "best_baseline": "best baseline",
}


def fmt(v, digits=2):
    return "∞" if v is None or v == math.inf else f"{v:.{digits}f}"


def spread(stat, digits=2):
    """'mean [min, max]' over seeds, or the one value."""
    if stat is None:
        return "—"
    if len(stat["values"]) == 1:
        return fmt(stat["mean"], digits)
    return f"{fmt(stat['mean'], digits)} [{fmt(stat['min'], digits)}, {fmt(stat['max'], digits)}]"


def first_seed_runs(results):
    first = results["settings"]["seeds"][0]
    return [r for r in results["levels"] if r["seed"] == first]


def plots(results, out):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    summary, speed_numbers = results["summary"], results.get("speed")
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(11, 4.2))
    photons = [l["photons"] for l in summary]
    for ax, metric, names in (
            (a1, "snr", (("raw", "k:"), ("best_baseline", "g--"), ("ours", "r-o"), ("ours_input_type", "r:x"),
                         ("reference", "b-s"), ("reference_uint16", "b:+"))),
            (a2, "trace", (("raw", "k:"), ("best_baseline", "g--"), ("ours", "r-o"), ("reference", "b-s")))):
        for name, style in names:
            stats = [l[metric].get(name) for l in summary]
            if any(s is None for s in stats):
                continue
            mean = np.array([s["mean"] for s in stats])
            err = np.array([[s["mean"] - s["min"] for s in stats], [s["max"] - s["mean"] for s in stats]])
            label = LABELS[name] + (" (oracle width)" if name == "best_baseline" else "")
            ax.errorbar(photons, mean, yerr=err, fmt=style, capsize=3, label=label)
        ax.set_xscale("log")
        ax.set_xticks(photons, [f"{v:g}" for v in photons])
        ax.minorticks_off()
        ax.set_xlabel("photons per pixel per frame (bright soma)")
        ax.grid(alpha=0.3)
    a1.set_ylabel("SNR vs ground truth (dB)")
    a2.set_ylabel("median neuron-trace correlation r")
    a1.legend(fontsize=7)
    fig.suptitle(f"mean over seeds {', '.join(map(str, results['settings']['seeds']))} (bars: min–max)", fontsize=9)
    fig.tight_layout()
    fig.savefig(out / "snr_vs_photons.png", dpi=110)
    plt.close(fig)

    # Example frames: one row per photon level (first seed).
    levels = first_seed_runs(results)
    names = [n for n in ("raw", "gaussian_3d", "ours", "reference", "truth") if n in levels[0]["paths"] or n == "gaussian_3d"]
    fig, axes = plt.subplots(len(levels), len(names), figsize=(2.2 * len(names), 2.3 * len(levels)), squeeze=False)
    for row, level in enumerate(levels):
        frame = min(level["train_frames"] + 20, results["config"]["frames"] - 1)  # a held-out frame
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

    # Traces of a few neurons at the middle photon level (first seed).
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
    axes[-1, 0].set_xlabel(f"frame ({level['photons']:g} photons, seed {level['seed']}; frames right of the "
                           "dashed line were never trained on)")
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


def yes_no(value):
    return "—" if value is None else ("**yes**" if value else "no")


def our_defaults(run):
    """The training settings our bundle recorded, in words."""
    t = run["ours_train"].get("settings") or {}
    try:
        patch = "×".join(map(str, t["patch"]))
        built_in = "starting from the built-in model's weights"
        # Bundles before the one settings vocabulary recorded "built_in"; newer ones "builtin".
        start = {"builtin": built_in, "built_in": built_in, "random": "from random weights"}
        return (f"patches {patch} (t×y×x), {t['patches_per_epoch']} per epoch, overlap {t['overlap']:g}, "
                f"lr {t['learning_rate']:g}, {t['loss']} loss, batch {t['batch_size']}, "
                f"validation share {t['validation_fraction']:g}, precision {t['precision']}, "
                f"{t.get('normalization', 'fixed').replace('_', '-')} normalisation, "
                f"{start.get(t.get('init'), 'from random weights')}")
    except (KeyError, TypeError):
        return "as recorded in results.json"


def write_report(results, out):
    runs, summary, st = results["levels"], results["summary"], results["settings"]
    s, p, c = results.get("speed"), results.get("parity"), results["config"]
    with_reference = not c["skip_reference"]
    seeds = st["seeds"]
    lines = ["# DeepCAD evaluation report", "",
             f"Generated {results['date']} by `{results['command']}` in {results['minutes']:.1f} min on "
             f"{results['machine']} ({results['threads']} threads, {c['device']}). {results['deepcad_version']}, "
             f"PyTorch {results['torch_version']} for the reference.", "",
             "Settings: " + (f"**same wall-clock budget**: {st['budget_seconds']:g} s of training for ours"
                             if st["budget_seconds"] else
                             f"**same work**: {c['epochs']} epochs × {c['patches']} patches of {c['patch']}³ for both")
             + f"; photon levels {', '.join(f'{v:g}' for v in st['photons'])}; seeds {', '.join(map(str, seeds))} "
             "(each seed is the simulation's and both trainings'); every level is run for every seed.", "",
             "Data: simulated two-photon calcium movies (`deepcad simulate`: somata with GCaMP-like transients, "
             f"neuropil, background, Poisson–Gaussian noise), {c['width']}×{c['width']} px, {c['frames']} frames, "
             f"{c['neurons']} neurons. Both implementations train on the first 80 % of the frames and denoise the "
             "whole movie; the last 20 % were never seen in training."]
    if st["budget_seconds"]:
        lines += ["", f"Ours: `deepcad train --time-budget {st['budget_seconds']:g}s --max-frames N --seed S` and "
                  f"nothing else, i.e. its defaults ({our_defaults(runs[0])}), then `deepcad denoise` with its defaults (seamless tiling, "
                  "`--output-type auto`: float32 when the data are dim, else the input's type) using the bundle "
                  "written by `-o`. The PyTorch reference then trains with a training-loop budget equal to the "
                  "wall-clock seconds our whole `deepcad train` process took (start-up, validation and checks "
                  "included, so the reference gets slightly more time), with DeepCAD-RT's settings (stack-mean "
                  f"subtraction, lr 5e-5, 0.5·L1 + 0.5·MSE, grid overlap 0.25, 200 patches per epoch, patches "
                  f"{c['patch']}³ because its 150³ does not fit these movies) and denoises with its tiling "
                  "(150³, overlap 0.6, per-tile brightness factor)."]
    else:
        lines += ["", f"Both train {c['epochs']} epochs × {c['patches']} patches of {c['patch']}³ (f = 16). Ours uses "
                  "its other defaults (statistics-based normalisation, lr 5e-4, MSE loss, seamless tiling, "
                  "`--output-type auto`); the PyTorch reference uses DeepCAD-RT's (stack-mean subtraction, lr 5e-5, "
                  "0.5·L1 + 0.5·MSE, tiling 150³ with overlap 0.6 and the per-tile brightness factor)."]
    lines += ["", "Baselines are scored at the width that is best against the truth (an oracle choice that "
              "flatters them): the best by pixel SNR is the better of the moving average and the 3-D Gaussian at "
              "their SNR-best widths; the best by traces is the highest median trace r among those and the same "
              "filters at their trace-best widths.", ""]
    if not any(entry(r, n) for r in runs for n in ("moving_average_for_traces", "gaussian_3d_for_traces")):
        lines += ["Note: this `deepcad score` did not emit the trace-best baseline widths "
                  "(`*_for_traces`), so the best baseline by traces is taken over the SNR-best widths only.", ""]

    lines += ["## Headline: ours against the PyTorch reference and the best oracle baseline", "",
              f"Mean over {len(seeds)} seed(s)" + (" ([min, max] over seeds in brackets)" if len(seeds) > 1 else "") +
              ". SNR in dB against the ground truth; trace r = median over neurons of the correlation between the "
              "output's and the truth's mean trace in the neuron's mask. The verdict is **yes** only if ours beats "
              + ("both the reference and " if with_reference else "") + "the best baseline on that metric at "
              "every seed" + ("" if with_reference else " (reference skipped in this run)") + ".", "",
              "| photons | raw SNR | ours SNR | reference SNR | best baseline SNR | raw trace r | ours trace r | "
              "reference trace r | best baseline trace r | ours wins SNR / traces |",
              "|---|---|---|---|---|---|---|---|---|---|"]
    for l in summary:
        sn, tr = l["snr"], l["trace"]
        lines.append(f"| {l['photons']:g} | {spread(sn.get('raw'))} | **{spread(sn.get('ours'))}** | "
                     f"{spread(sn.get('reference'))} | {spread(sn.get('best_baseline'))} | "
                     f"{spread(tr.get('raw'), 3)} | **{spread(tr.get('ours'), 3)}** | {spread(tr.get('reference'), 3)} | "
                     f"{spread(tr.get('best_baseline'), 3)} | {yes_no(l['ours_wins_snr'])} / {yes_no(l['ours_wins_trace'])} |")
    lines += [""] + spike_harness.headline_lines(summary, with_reference)
    lines += ["Per seed: beats the reference / beats the best baseline (SNR; traces):", "",
              "| photons | seed | SNR: vs reference | SNR: vs baseline | traces: vs reference | traces: vs baseline | "
              "best baseline by SNR | best baseline by traces |", "|---|---|---|---|---|---|---|---|"]
    for r in runs:
        m = r["metrics"]

        def margin(metric, other, digits):
            ours, them = m[metric]["ours"], m[metric][other]
            if ours is None or them is None:
                return "—"
            return f"{'**yes**' if ours > them else 'no'} ({ours - them:+.{digits}f})"
        lines.append(f"| {r['photons']:g} | {r['seed']} | {margin('snr', 'reference', 2)} | "
                     f"{margin('snr', 'best_baseline', 2)} | {margin('trace', 'reference', 3)} | "
                     f"{margin('trace', 'best_baseline', 3)} | {m['best_baseline_snr_source']} | "
                     f"{m['best_baseline_trace_source']} |")

    lines += ["", "### Training runs", "",
              "| photons | seed | ours: seconds | ours: iterations (epochs) | ours: s/iteration | "
              "reference: loop budget s | reference: iterations (epochs) | reference: s/iteration |",
              "|---|---|---|---|---|---|---|---|"]
    for r in runs:
        o, ref = r["ours_train"], r.get("reference_train")
        per_it = f"{o['seconds'] / o['iterations']:.2f}" if o.get("iterations") else "—"
        if ref:
            budget = f"{ref['time_budget_seconds']:.1f}" if ref.get("time_budget_seconds") else "— (fixed work)"
            ref_cells = (f"{budget} | {ref['iterations']} ({ref.get('epochs_started', '?')}) | "
                         f"{ref['seconds_per_iteration']:.2f}")
        else:
            ref_cells = "— | — | —"
        lines.append(f"| {r['photons']:g} | {r['seed']} | {o['seconds']:.1f} | {o['iterations']} ({o['epochs']}) | "
                     f"{per_it} | {ref_cells} |")
    lines += ["", "Ours: seconds are the whole `deepcad train` process; s/iteration = that / iterations (start-up, "
              "validation and checks included). Reference: s/iteration is the timed training step alone.", "",
              "### Cost of integer output", "",
              "| photons | ours default output type (`auto`) | ours SNR, default | ours SNR, input's type | cost of rounding (dB) |",
              "|---|---|---|---|---|"]
    for l in summary:
        types = sorted({r["ours_denoise"]["sample_type"] for r in runs if r["photons"] == l["photons"]})
        a, b = l["snr"].get("ours"), l["snr"].get("ours_input_type")
        cost = f"{a['mean'] - b['mean']:+.2f}" if a and b else "—"
        lines.append(f"| {l['photons']:g} | {', '.join(types)} | {spread(a)} | {spread(b)} | {cost} |")

    lines += ["", "![SNR and trace correlation versus photon level](snr_vs_photons.png)", ""]
    for r in runs:
        lines += [f"## {r['photons']:g} photons per pixel per frame, seed {r['seed']}", "",
                  "| output | SNR dB | invariant SNR dB | PSNR dB | mean SSIM | pixel r | trace r (median) | spike r | "
                  "spike F1 |", "|---|---|---|---|---|---|---|---|---|"]
        for e in r["scores"]["entries"]:
            sc = e["scores"]
            label = LABELS.get(e["name"], e["name"])
            if e["name"] in TRACE_BASELINES:
                label += f" — {e['source']}"
            if e["name"].startswith("ours"):
                label += f" ({r[e['name'] + '_denoise']['sample_type']})"
            lines.append(f"| {label} | {fmt(sc['snr_db'])} | {fmt(sc['invariant_snr_db'])} | {fmt(sc['psnr_db'])} | "
                         f"{fmt(sc['ssim'], 3)} | {fmt(sc['pearson'], 3)} | {fmt(sc['trace_correlation_median'], 3)} |"
                         + spike_harness.entry_columns(r, e["name"]))
        lines += spike_harness.extra_rows(r)
        lines.append("")
    first = seeds[0]
    lines += ["![Example frames (a held-out frame, first seed)](frames.png)", "", "![Neuron traces](traces.png)", "",
              "## Reference-free checks (what a user without ground truth can look at)", "",
              "The residual raw − output should be noise: lag-1 temporal autocorrelation near 0, variance rising "
              "linearly with intensity with the detector's gain (the simulation's gain is 2.0 counts per photon), "
              f"and frames never trained on (the last 20 %) no worse than training frames (ratio ≈ 1). Seed {first}.", "",
              "| photons | output | residual lag-1 r | noise gain | variance~intensity r | held-out / training RMS |",
              "|---|---|---|---|---|---|"]
    for l in first_seed_runs(results):
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
    parser.add_argument("--out", type=Path, default=None,
                        help="report folder (default docs/evaluation, or docs/evaluation/spikes with --spikes-suite)")
    parser.add_argument("--work", type=Path, default=Path("/tmp/deepcad-evaluation"))
    parser.add_argument("--deepcad", type=Path, default=ROOT / "target" / "release" / "deepcad")
    parser.add_argument("--photons", default=None,
                        help=f"photon levels, comma-separated (default 50,5,1,0.5; {spike_harness.SUITE_PHOTONS} "
                             "with --spikes-suite)")
    parser.add_argument("--seeds", default="1,2",
                        help="seeds, comma-separated: each level is simulated and trained once per seed")
    parser.add_argument("--budget", type=float, default=None, metavar="SECONDS",
                        help="same wall-clock budget: ours trains with its defaults and --time-budget SECONDS, the "
                             "reference for as long as ours took (--epochs/--patches then do not apply)")
    parser.add_argument("--width", type=int, default=128)
    parser.add_argument("--frames", type=int, default=600)
    parser.add_argument("--neurons", type=int, default=30)
    parser.add_argument("--patch", type=int, default=64, help="training patch (both without --budget; the reference's with it)")
    parser.add_argument("--epochs", type=int, default=4, help="without --budget: epochs for both")
    parser.add_argument("--patches", type=int, default=64, help="without --budget: patches per epoch for both")
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument("--device", default="cpu", help="cpu, or cuda[:N] for the GPU table (both implementations)")
    parser.add_argument("--methods", default=None, metavar="METHODS",
                        help="train ours with these `deepcad train --method` values, comma-separated (e.g. "
                             "interlaced,hybrid): the first is the headline 'ours', each other one an extra output "
                             "'ours_<method>' trained with the same settings on the same movies (default: one model, "
                             "the engine's default method)")
    parser.add_argument("--restore-events", type=float, default=None, metavar="K",
                        help="also score each of our outputs with its fast events restored, as an extra output "
                             "'<name>_restored': K = 1 runs the engine's `deepcad denoise --restore-events`; any "
                             "other Wiener threshold K (noise SDs) the Python experiment eval/event_restoration.py")
    parser.add_argument("--skip-reference", action="store_true", help="ours and the baselines only")
    parser.add_argument("--skip-speed", action="store_true")
    parser.add_argument("--real", type=Path, help="also train/denoise this real movie and run the reference-free checks")
    parser.add_argument("--quick", action="store_true",
                        help="tiny sizes, one seed, two levels (and a budget of at most 30 s), to check the harness")
    parser.add_argument("--spikes-suite", action="store_true",
                        help="run the spike-focused movies instead of the standard ones: fast indicator at 7.5, 15, "
                             "30 and 60 Hz, sparse single spikes, one-photon-like; no parity or speed")
    parser.add_argument("--spikes-movies", default=None, metavar="NAMES",
                        help="with --spikes-suite, only these movies (comma-separated: "
                             + ", ".join(s["name"] for s in spike_harness.SPIKE_SUITE) + ")")
    parser.add_argument("--report-only", action="store_true",
                        help="rewrite report.md from the results.json in --out (after editing the report's text)")
    cfg = parser.parse_args()
    if cfg.out is None:
        cfg.out = ROOT / "docs" / "evaluation" / ("spikes" if cfg.spikes_suite else "")
    if cfg.report_only:
        results = json.loads((cfg.out / "results.json").read_text())
        if results["config"].get("spikes_suite"):
            (cfg.out / "report.md").write_text("\n".join(spike_harness.suite_report_lines(results, LABELS)) + "\n")
        else:
            write_report(results, cfg.out)
        return
    if cfg.photons is None:
        cfg.photons = spike_harness.SUITE_PHOTONS if cfg.spikes_suite else "50,5,1,0.5"
    if cfg.quick and cfg.spikes_suite:
        # Spikes need time: 600 frames (20 s at 30 Hz) and more neurons for the medians.
        cfg.width, cfg.frames, cfg.neurons, cfg.epochs, cfg.patches = 64, 600, 12, 1, 4
    elif cfg.quick:
        cfg.width, cfg.frames, cfg.neurons, cfg.epochs, cfg.patches, cfg.photons = 64, 200, 8, 1, 4, "20,2"
    if cfg.quick:
        cfg.seeds = cfg.seeds.split(",")[0]
        if cfg.budget:
            cfg.budget = min(cfg.budget, 30.0)
    if cfg.methods is not None:
        methods = cfg.methods.split(",")
        if not all(re.fullmatch(r"[a-z][a-z0-9-]*", m) for m in methods) or len(set(methods)) != len(methods):
            parser.error("--methods: distinct method names, comma-separated (e.g. interlaced,hybrid)")
    photon_levels = [float(p) for p in cfg.photons.split(",")]
    seeds = [int(v) for v in cfg.seeds.split(",")]
    if cfg.budget is not None and cfg.budget <= 0:
        parser.error("--budget must be positive")
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
    }
    if cfg.spikes_suite:
        spike_suite(runner, cfg, results, photon_levels, seeds, started)
        return
    results["levels"] = [quality_level(runner, cfg.work, photons, seed, cfg) for photons in photon_levels
                         for seed in seeds]
    results["summary"] = summarize(results["levels"], photon_levels)
    results["settings"] = {
        "mode": "same wall-clock budget" if cfg.budget else "same work (epochs × patches)",
        "budget_seconds": cfg.budget, "seeds": seeds, "photons": photon_levels,
        "ours_arguments": results["levels"][0]["ours_train"]["arguments"],
        "reference_arguments": (None if cfg.skip_reference else
                                ["--patch", str(cfg.patch), "--time-budget", "<ours seconds>"] if cfg.budget else
                                results["levels"][0]["reference_train"]["arguments"]),
        "runs": [{"photons": r["photons"], "seed": r["seed"],
                  "ours_seconds": r["ours_train"]["seconds"], "ours_iterations": r["ours_train"]["iterations"],
                  "ours_epochs": r["ours_train"]["epochs"],
                  "reference_budget_seconds": r.get("reference_train", {}).get("time_budget_seconds"),
                  "reference_iterations": r.get("reference_train", {}).get("iterations"),
                  "reference_epochs": r.get("reference_train", {}).get("epochs_started")}
                 for r in results["levels"]],
    }
    middle = first_seed_runs(results)[len(photon_levels) // 2]
    if not cfg.skip_reference:
        results["parity"] = parity(runner, cfg.work, middle)
    if not cfg.skip_speed:
        results["speed"] = speed(runner, cfg.work, cfg, Path(middle["paths"]["raw"]).parent / "ours.safetensors")
    if cfg.device.startswith("cuda") and not cfg.skip_reference:
        results["gpu_note"] = rt_benchmark(runner, cfg.work, Path(middle["paths"]["raw"]).parent)
    if cfg.real:
        results["real"] = real_movie(runner, cfg)
    results["minutes"] = (time.time() - started) / 60
    # The numbers first: a report or plot that fails must not lose the run (--report-only redoes them).
    (cfg.out / "results.json").write_text(json.dumps(results, indent=1, default=str))
    plots(results, cfg.out)
    write_report(results, cfg.out)
    print(headline_text(results))


def spike_suite(runner, cfg, results, photon_levels, seeds, started):
    """The spike suite: every movie of spike_harness.SPIKE_SUITE at every photon level and seed,
    trained, denoised and scored like a standard level; its own report and results.json."""
    names = cfg.spikes_movies.split(",") if cfg.spikes_movies else [s["name"] for s in spike_harness.SPIKE_SUITE]
    unknown = set(names) - {s["name"] for s in spike_harness.SPIKE_SUITE}
    if unknown:
        sys.exit(f"evaluate: unknown spike-suite movie(s) {', '.join(sorted(unknown))}")
    scenarios = [s for s in spike_harness.SPIKE_SUITE if s["name"] in names]
    results["levels"] = [quality_level(runner, cfg.work, photons, seed, cfg, scenario)
                         for scenario in scenarios for photons in photon_levels for seed in seeds]
    if cfg.budget:
        training = (f"Training: ours with its defaults and `--time-budget {cfg.budget:g}s`; the PyTorch reference "
                    "(DeepCAD-RT's settings) for the wall-clock time ours took.")
    else:
        training = (f"Training: both {cfg.epochs} epoch(s) × {cfg.patches} patches of {cfg.patch}³ (ours from its "
                    "defaults otherwise, starting from the built-in model; the reference with DeepCAD-RT's settings).")
    if cfg.methods:
        training += (" Ours trained once per method (`--method`), same settings and movie: "
                     + ", ".join(f"{m} as '{n}'" for m, n in method_outputs(cfg)) + ".")
    if cfg.skip_reference:
        training += " The reference was skipped in this run."
    results["settings"] = {"photons": photon_levels, "seeds": seeds, "training_words": training + " Both train on "
                           "the first 80 % of the frames; every frame is scored."}
    results["minutes"] = (time.time() - started) / 60
    (cfg.out / "results.json").write_text(json.dumps(results, indent=1, default=str))  # before the report
    spike_harness.suite_plot(results, cfg.out)
    lines = spike_harness.suite_report_lines(results, LABELS)
    (cfg.out / "report.md").write_text("\n".join(lines) + "\n")
    start = next(i for i, line in enumerate(lines) if line.startswith("| movie |"))
    print("\n".join(lines[start:lines.index("## Per movie") - 2]))
    print(f"\nevaluate: wrote {cfg.out / 'report.md'} in {results['minutes']:.1f} min")


def headline_text(results):
    """The headline table as it appears in the report, for the terminal."""
    text = (out_path := Path(results["config"]["out"]) / "report.md").read_text()
    start = text.index("## Headline")
    end = text.index("### Training runs")
    return f"{text[start:end].rstrip()}\n\nevaluate: wrote {out_path} in {results['minutes']:.1f} min"


def real_movie(runner, cfg):
    """A movie without ground truth: train on its first 80 %, denoise, reference-free checks."""
    frames = tifffile.TiffFile(cfg.real).series[0].shape[0]
    train_frames = int(frames * 0.8)
    patch_t = max(8, min(cfg.patch, (train_frames // 2) // 8 * 8))
    model, out = cfg.work / "real.safetensors", cfg.work / "real-denoised.tif"
    settings = (["--time-budget", f"{cfg.budget:g}s"] if cfg.budget else
                ["--epochs", cfg.epochs, "--patches-per-epoch", cfg.patches])
    runner.deepcad_cmd("train", cfg.real, "-o", model, *settings, "--patch-t", patch_t, "--max-frames", train_frames,
                       *runner.compute())
    runner.deepcad_cmd("denoise", cfg.real, "-m", model, "-o", out, *runner.compute())
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
