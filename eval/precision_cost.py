"""What bfloat16 denoising costs in quality: the same model, the same movie, denoised in float32
and in bfloat16 (`deepcad denoise --precision`), scored against the truth at every photon level of
the evaluation harness (SNR, median trace r held out, median spike r).

The gate (issue 25): `--precision auto` may use bfloat16 only if it costs at most 0.05 dB of SNR and
0.001 of trace r at every level. The cost is a property of the arithmetic on one model's weights,
so each level is scored with the built-in model (what a user gets with no training) and, with
--train SECONDS, also with a model trained on that level's movie for that long (the harness's setup).
Outputs are written as float32 so rounding to the input's integers does not hide the difference.

Usage (the release binary from `cargo build --release`, the harness's Python environment):
  python eval/precision_cost.py --out docs/evaluation/precision [--photons 50,5,1,0.5] [--train 120]
"""

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # spike inference inverts many tiny matrices

import numpy as np
import tifffile

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import spikes as sp  # noqa: E402  (the harness's spike scoring, unchanged)

GATE_DB = 0.05
GATE_TRACE_R = 0.001


def run(args):
    print("$ " + " ".join(map(str, args)), flush=True)
    started = time.perf_counter()
    done = subprocess.run([str(a) for a in args], capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"precision_cost: {' '.join(map(str, args))} failed ({done.returncode}): {done.stderr[-2000:]}")
    return done.stdout, time.perf_counter() - started


def simulate(cfg, level, photons):
    files = {name: level / f"{name}.tif" for name in ("raw", "truth", "labels")}
    files["spikes"] = level / "spikes.csv"
    if not all(p.exists() for p in files.values()):
        run([cfg.deepcad, "simulate", "-o", files["raw"], "--truth", files["truth"], "--labels", files["labels"],
             "--spikes", files["spikes"], "--width", cfg.width, "--height", cfg.width, "--frames", cfg.frames,
             "--neurons", cfg.neurons, "--photons", photons, "--seed", cfg.seed, "--quiet"])
    return files


def scores(cfg, files, outputs, held_out_from):
    """SNR and median trace r (`deepcad score`) and median spike r (eval/spikes.py) of each output."""
    path = outputs["float32"].with_name(outputs["float32"].stem.replace("-float32", "") + "-scores.json")
    run([cfg.deepcad, "score", "--raw", files["raw"], "--truth", files["truth"], "--labels", files["labels"],
         "--held-out-from", held_out_from, "--json", path, "--overwrite", "--quiet",
         *[f"{name}={p}" for name, p in outputs.items()]])
    entries = {e["name"]: e["scores"] for e in json.loads(path.read_text())["entries"]}
    truth_spikes = sp.read_spikes_csv(files["spikes"])
    masks = sp.label_masks(tifffile.imread(files["labels"]), truth_spikes.shape[1])
    result = {}
    for name, p in outputs.items():
        movie = tifffile.imread(p)
        result[name] = {"snr_db": entries[name]["snr_db"], "trace_r": entries[name]["trace_correlation_median"],
                        "spike_r": sp.score_movie(movie, masks, truth_spikes)["r"]}
    a, b = (tifffile.imread(outputs[n]).astype(np.float64) for n in ("float32", "bfloat16"))
    result["difference"] = {"max_abs": float(np.abs(a - b).max()),
                            "rms_over_output_std": float(np.sqrt(np.mean((a - b) ** 2)) / a.std())}
    return result


def level_cost(cfg, photons, model_kind):
    level = cfg.work / f"photons-{photons:g}-seed-{cfg.seed}"
    level.mkdir(parents=True, exist_ok=True)
    files = simulate(cfg, level, photons)
    held_out_from = int(cfg.frames * 0.8)
    if model_kind == "built-in":
        model = "default"
    else:
        model = level / "trained.safetensors"
        if not model.exists():
            run([cfg.deepcad, "train", files["raw"], "-o", model, "--time-budget", f"{cfg.train:g}s",
                 "--max-frames", held_out_from, "--seed", cfg.seed, "--threads", cfg.threads, "--quiet"])
    outputs, seconds = {}, {}
    for precision in ("float32", "bfloat16"):
        out = level / f"{model_kind}-{precision}.tif"
        _, seconds[precision] = run([cfg.deepcad, "denoise", files["raw"], "-m", model, "-o", out, "--overwrite",
                                     "--output-type", "float32", "--precision", precision,
                                     "--threads", cfg.threads, "--quiet"])
        outputs[precision] = out
    result = scores(cfg, files, outputs, held_out_from)
    f, b = result["float32"], result["bfloat16"]
    cost = {"snr_db": f["snr_db"] - b["snr_db"], "trace_r": f["trace_r"] - b["trace_r"],
            "spike_r": (f["spike_r"] - b["spike_r"]) if None not in (f["spike_r"], b["spike_r"]) else None}
    return {"photons": photons, "model": model_kind, "seconds": seconds, **result, "cost": cost,
            "within_gate": cost["snr_db"] <= GATE_DB and cost["trace_r"] <= GATE_TRACE_R}


def report(results, cfg):
    cpu_flags = open("/proc/cpuinfo").read().split()
    units = "AMX-BF16" if "amx_bf16" in cpu_flags else ("AVX512-BF16, no AMX" if "avx512_bf16" in cpu_flags else "none")
    def fmt(v, digits, sign=""):
        return "–" if v is None else f"{v:{sign}.{digits}f}"
    lines = ["# bfloat16 denoising: quality cost per photon level", "",
             f"Machine: {os.cpu_count()} CPUs, native bfloat16 units: {units}; threads {cfg.threads}. Simulated "
             f"{cfg.width}x{cfg.width}x{cfg.frames} movies, {cfg.neurons} neurons, seed {cfg.seed}; scores on the "
             f"held-out last 20 % of frames; outputs float32. Gate: cost <= {GATE_DB} dB SNR and <= {GATE_TRACE_R} "
             "trace r at every level. Cost = float32 minus bfloat16 (positive: bfloat16 is worse).", "",
             "| model | photons | SNR f32 (dB) | SNR bf16 | cost dB | trace r f32 | trace r bf16 | cost trace r | "
             "spike r f32 | spike r bf16 | cost spike r | rms diff / output std | seconds f32 / bf16 | gate |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in results:
        f, b, c = r["float32"], r["bfloat16"], r["cost"]
        lines.append(f"| {r['model']} | {r['photons']:g} | {f['snr_db']:.3f} | {b['snr_db']:.3f} | {c['snr_db']:+.4f} | "
                     f"{f['trace_r']:.5f} | {b['trace_r']:.5f} | {c['trace_r']:+.5f} | {fmt(f['spike_r'], 4)} | "
                     f"{fmt(b['spike_r'], 4)} | {fmt(c['spike_r'], 4, '+')} | "
                     f"{r['difference']['rms_over_output_std']:.2e} | {r['seconds']['float32']:.1f} / "
                     f"{r['seconds']['bfloat16']:.1f} | {'pass' if r['within_gate'] else 'FAIL'} |")
    verdict = all(r["within_gate"] for r in results)
    lines += ["", f"Verdict: bfloat16 {'passes' if verdict else 'misses'} the gate at every level and model "
              f"scored here, so `auto` {'may use' if verdict else 'stays float32, not'} bfloat16."]
    return "\n".join(lines) + "\n", verdict


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=HERE.parent / "docs" / "evaluation" / "precision")
    parser.add_argument("--work", type=Path, default=Path("/tmp/deepcad-precision-cost"))
    parser.add_argument("--deepcad", type=Path, default=HERE.parent / "target" / "release" / "deepcad")
    parser.add_argument("--photons", default="50,5,1,0.5")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--width", type=int, default=128)
    parser.add_argument("--frames", type=int, default=600)
    parser.add_argument("--neurons", type=int, default=30)
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument("--train", type=float, default=None, metavar="SECONDS",
                        help="also score a model trained for SECONDS on each level's movie (the harness's setup)")
    cfg = parser.parse_args()
    cfg.out.mkdir(parents=True, exist_ok=True)
    kinds = ["built-in"] + (["trained"] if cfg.train else [])
    results = []
    for kind in kinds:
        for photons in (float(p) for p in cfg.photons.split(",")):
            results.append(level_cost(cfg, photons, kind))
            print(json.dumps({k: results[-1][k] for k in ("model", "photons", "cost", "within_gate")}), flush=True)
    text, verdict = report(results, cfg)
    (cfg.out / "precision_cost.json").write_text(json.dumps({"config": {k: str(v) for k, v in vars(cfg).items()},
                                                             "results": results, "passes_gate": verdict}, indent=1))
    (cfg.out / "precision_cost.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
