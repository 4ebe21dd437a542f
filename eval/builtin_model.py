"""How the built-in general model (`--model default`) does, on the evaluation harness's own movies.

For every level folder that `eval/evaluate.py` left in --work (photons-P-seed-S: raw.tif, truth.tif,
labels.tif, ours.tif = a model trained on that movie with the harness's budget and defaults), this:
  1. denoises raw.tif with the built-in model, untrained on it ("builtin");
  2. fine-tunes the built-in model on the movie for a third of that training budget
     (`train --resume default --time-budget B/3`, same frames and seed) and denoises ("finetuned");
  3. scores builtin, finetuned and ours in one `deepcad score` run against the truth.
Then the reference-free checks (`deepcad score` without truth: residual whiteness and noise-gain fit)
of the built-in model and of a model trained on the movie itself, on the real Allen Institute movie
(100×100×100, ../shared/research-data). Writes builtin-model.json and builtin-model.md into --out.

  python eval/builtin_model.py --work /tmp/deepcad-evaluation --results docs/evaluation/results.json \
      --out docs/evaluation [--deepcad target/release/deepcad]
"""

import argparse
import json
import re
import subprocess
import sys
import time
from pathlib import Path

import h5py
import numpy as np
import tifffile

ROOT = Path(__file__).resolve().parent.parent
ALLEN = ROOT.parent / "shared" / "research-data" / "allen_ophys_etl_pipelines" / "movie_100x100x100.h5"


def run(args, log):
    print("$ " + " ".join(map(str, args)), flush=True)
    started = time.perf_counter()
    done = subprocess.run([str(a) for a in args], capture_output=True, text=True)
    with open(log, "a") as f:
        f.write("$ " + " ".join(map(str, args)) + "\n" + done.stderr + done.stdout)
    if done.returncode != 0:
        # Named after the script that runs (eval/compare_bundles.py shares this runner).
        sys.exit(f"{Path(sys.argv[0]).stem}: {' '.join(map(str, args))} failed ({done.returncode}):\n{done.stderr}")
    return done, time.perf_counter() - started


def entry(scores, name):
    return next(e for e in scores["entries"] if e["name"] == name)


def level_record(deepcad, level, scratch, log):
    photons, seed = re.match(r"photons-([\d.]+)-seed-(\d+)", level.name).groups()
    raw, truth, labels = level / "raw.tif", level / "truth.tif", level / "labels.tif"
    train_frames = scratch["train_frames"]
    scratch_budget = float(next(a for a in scratch["ours_train"]["arguments"] if a.endswith("s"))[:-1])
    finetune_budget = scratch_budget / 3
    builtin, tuned_model, tuned = level / "builtin.tif", level / "finetuned.safetensors", level / "finetuned.tif"
    for stale in (builtin, tuned_model, tuned, level / "finetuned.best.safetensors"):
        stale.unlink(missing_ok=True)
    _, builtin_seconds = run([deepcad, "denoise", raw, "-m", "default", "-o", builtin, "--device", "cpu", "-q"], log)
    _, tune_seconds = run([deepcad, "train", raw, "-o", tuned_model, "--resume", "default", "--time-budget",
                           f"{finetune_budget:g}s", "--max-frames", train_frames, "--seed", seed, "--device", "cpu"], log)
    run([deepcad, "denoise", raw, "-m", tuned_model, "-o", tuned, "--device", "cpu", "-q"], log)
    scores_path = level / "builtin-scores.json"
    run([deepcad, "score", "--raw", raw, "--truth", truth, "--labels", labels, "--held-out-from", train_frames, "--overwrite",
         "--json", scores_path, "-q", f"builtin={builtin}", f"finetuned={tuned}", f"ours={level / 'ours.tif'}"], log)
    scores = json.loads(scores_path.read_text())
    metrics = {name: {"snr_db": entry(scores, name)["scores"]["snr_db"],
                      "trace_r": entry(scores, name)["scores"]["trace_correlation_median"]}
               for name in ("raw", "builtin", "finetuned", "ours")}
    m = scratch["metrics"]
    metrics["reference"] = {"snr_db": m["snr"].get("reference"), "trace_r": m["trace"].get("reference")}
    metrics["best_baseline"] = {"snr_db": m["snr"]["best_baseline"], "trace_r": m["trace"]["best_baseline"]}
    record = {"photons": float(photons), "seed": int(seed), "scratch_budget_s": scratch_budget,
              "finetune_budget_s": finetune_budget, "builtin_denoise_s": builtin_seconds,
              "finetune_wall_s": tune_seconds, "metrics": metrics}
    (level / "builtin-record.json").write_text(json.dumps(record, indent=1))
    return record


def allen_checks(deepcad, work, log):
    """Reference-free checks on the real movie: the built-in model and one trained on the movie."""
    folder = work / "allen"
    folder.mkdir(parents=True, exist_ok=True)
    movie = folder / "allen.tif"
    with h5py.File(ALLEN) as f:
        data = np.asarray(f["data"])
    # int16 on disk, non-negative: keep the values, store as uint16 when they fit (ImageJ's favourite).
    data = data.astype(np.uint16) if data.min() >= 0 else data.astype(np.float32)
    tifffile.imwrite(movie, data, imagej=True, metadata={"axes": "TYX"})
    own, builtin, own_out = folder / "own.safetensors", folder / "builtin.tif", folder / "own.tif"
    for stale in (own, folder / "own.best.safetensors", builtin, own_out):
        stale.unlink(missing_ok=True)
    run([deepcad, "denoise", movie, "-m", "default", "-o", builtin, "--device", "cpu", "-q"], log)
    # 100 frames: the patch shrinks to what fits (with a warning); a 2-minute budget from random
    # weights (the comparison is the built-in model against a model of the movie's own).
    run([deepcad, "train", movie, "-o", own, "--time-budget", "120s", "--patch-t", "32", "--seed", "1",
         "--init", "random", "--device", "cpu"], log)
    run([deepcad, "denoise", movie, "-m", own, "-o", own_out, "--device", "cpu", "-q"], log)
    scores_path = folder / "scores.json"
    run([deepcad, "score", "--raw", movie, "--json", scores_path, "--overwrite", "-q", f"builtin={builtin}", f"own={own_out}"], log)
    scores = json.loads(scores_path.read_text())
    return {name: entry(scores, name)["residual"] for name in ("builtin", "own")} | {"shape": list(data.shape),
                                                                                    "dtype": str(data.dtype)}


def fmt(v, digits):
    return "–" if v is None else f"{v:.{digits}f}"


def markdown(levels, allen, results):
    lines = ["# The built-in general model", "",
             "Generated by `eval/builtin_model.py` on the harness's movies of the committed report "
             f"(`{results}`: 128×128×600 simulated two-photon movies, scored on all frames against the truth; "
             "training used the first 480). `builtin`: `deepcad denoise --model default`, never trained on the "
             "movie. `finetuned`: `deepcad train --resume default` for a third of that budget. "
             "`ours`: the report's model trained on the movie for the full budget with the defaults, starting from "
             "the weights in brackets (random weights before commit 8366d90, the built-in model's since; a new built-in "
             "model changes both). "
             "Reference and best baseline: from the report (same movie, same scoring).", "",
             "| photons | raw | builtin | finetuned (budget) | ours (budget, start) | reference | best baseline |",
             "|---|---|---|---|---|---|---|"]
    for key, title, digits in (("snr_db", "pixel SNR, dB", 2), ("trace_r", "median neuron-trace r", 4)):
        lines.append(f"| **{title}** | | | | | | |")
        for r in levels:
            m = r["metrics"]
            lines.append(f"| {r['photons']:g} | {fmt(m['raw'][key], digits)} | {fmt(m['builtin'][key], digits)} | "
                         f"{fmt(m['finetuned'][key], digits)} ({r['finetune_budget_s']:.0f} s) | "
                         f"{fmt(m['ours'][key], digits)} ({r['scratch_budget_s']:.0f} s, {r['ours_init']}) | "
                         f"{fmt(m['reference'][key], digits)} | {fmt(m['best_baseline'][key], digits)} |")
    lines += ["", "## Reference-free checks on a real movie", "",
              f"Allen Institute two-photon crop ({'×'.join(map(str, allen['shape']))}, {allen['dtype']}), "
              "no ground truth. `deepcad score` without truth: is what each model removed noise-like?", "",
              "| model | residual lag-1 correlation (≈0: noise-like) | variance vs intensity slope (gain) | r (≈1: shot noise) |",
              "|---|---|---|---|"]
    for name, label in (("builtin", "built-in, untrained on it"), ("own", "trained on it from random weights (120 s)")):
        c = allen[name] or {}
        lines.append(f"| {label} | {fmt(c.get('lag1_autocorrelation'), 3)} | {fmt(c.get('noise_gain'), 2)} | "
                     f"{fmt(c.get('variance_intensity_correlation'), 3)} |")
    return "\n".join(lines) + "\n"


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work", type=Path, default=Path("/tmp/deepcad-evaluation"))
    parser.add_argument("--results", type=Path, default=ROOT / "docs" / "evaluation" / "results.json")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "evaluation")
    parser.add_argument("--deepcad", type=Path, default=ROOT / "target" / "release" / "deepcad")
    parser.add_argument("--reuse", action="store_true",
                        help="keep each level's earlier result (builtin-record.json) instead of recomputing it")
    a = parser.parse_args()
    log = a.work / "builtin-commands.log"
    results = json.loads(a.results.read_text())
    levels = []
    for scratch in results["levels"]:
        level = a.work / f"photons-{scratch['photons']:g}-seed-{scratch['seed']}"
        if not (level / "ours.tif").is_file():
            sys.exit(f"builtin_model: {level} has no ours.tif; run eval/evaluate.py with --work {a.work} first")
        cached = level / "builtin-record.json"
        record = (json.loads(cached.read_text()) if a.reuse and cached.is_file()
                  else level_record(a.deepcad, level, scratch, log))
        # Where the report's model started (its settings record it since training could start from the built-in one).
        record["ours_init"] = scratch["ours_train"].get("settings", {}).get("init", "random")
        levels.append(record)
    allen = allen_checks(a.deepcad, a.work, log)
    out = {"levels": levels, "allen": allen}
    (a.out / "builtin-model.json").write_text(json.dumps(out, indent=1))
    report = a.results.resolve().parent / "report.md"
    shown = report.relative_to(ROOT) if report.is_relative_to(ROOT) else report
    (a.out / "builtin-model.md").write_text(markdown(levels, allen, shown))
    print(markdown(levels, allen, shown))


if __name__ == "__main__":
    main()
