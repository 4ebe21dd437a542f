"""The real-data benchmark: denoising quality on real movies, without ground truth.

For each real movie: estimate the detector's gain and offset from the variance-mean relation, turn
the counts into photons, and binomially thin them to 1/5 and 1/20 (eval/thinning.py): a dimmer
recording of exactly the same scene, written back in the detector's units. Each method denoises the
thinned movie; its output, scaled to full light, is scored against the photons thinning dropped,
an independent recording of the same scene (their known shot-noise variance is subtracted):
  * pixel SNR (dB, noise-corrected: an estimate of the SNR against the true photon rate);
  * static detail: correlation of the output's temporal mean with the dropped photons' temporal
    mean in three spatial frequency bands (differences of Gaussians 0.7-1.4, 1.4-2.8, 2.8-5.6 px),
    so blurred neurites and lost puncta cost points at the finest band first;
  * neuron traces: regions found on the full movie's temporal mean; Pearson r of each region's
    trace against the dropped photons' trace (median over regions);
  * inferred spikes: OASIS events (eval/spikes.py) on both traces, F1 of matched events;
  * `deepcad score`'s reference-free checks of each output against the thinned movie.
Methods: the thinned movie itself; the built-in model; the built-in model fine-tuned on the
thinned movie (`train --resume default --time-budget`, 5 minutes by default); the PyTorch reference
trained on it for the same time (--skip-reference leaves it out); moving averages of 3-21 frames
(the 21-frame mean, and the best width by SNR, an oracle choice). Pictures of one frame per method.

  python eval/real_data.py --out docs/evaluation/real-data [--budget 300] [--skip-reference]
                           [--movie NAME=file.tif ...] [--deepcad target/release/deepcad]

Movies (each licence recorded in the report; data are read from ../shared/research-data, never
committed): the two Allen Institute two-photon crops. --movie adds any TIFF.
"""

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

CHILD_ENVIRONMENT = dict(os.environ)
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import h5py
import numpy as np
import tifffile
from scipy import ndimage

import spikes
import thinning

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
RESEARCH = ROOT.parent / "shared" / "research-data"
KEEPS = (0.2, 0.05)
BANDS = ((0.7, 1.4), (1.4, 2.8), (2.8, 5.6))
WINDOWS = (3, 5, 9, 21)
ALLEN_LICENCE = ("Allen Institute Software License (non-commercial research use; from AllenInstitute/"
                 "ophys_etl_pipelines test resources); read from ../shared/research-data, not committed")
CONSIDERED_NOT_USED = (
    "`sima` 1.3.2 on PyPI (GPL-2.0+) ships `sima/tests/data/example.tif`: real two-photon, 20×128×256 uint16; "
    "20 frames are too few for 64-frame training patches and for the detail halves.",
    "`fissa` (GPL-3.0) test images `AVG_A0{1,2,3}.tif` in ../shared/research-data: 29×21×14, downsampled; too "
    "small to train on or to thin meaningfully.",
    "CaImAn's `example_movies/demoMovie.tif` (GPL-2.0) and DeepInterpolation's `sample_data/ophys_tiny_761605196.tif` "
    "(Allen Institute licence) are not in the wheels on PyPI and their GitHub copies are stored outside git "
    "(LFS or absent from the snapshot); the harness takes either with --movie NAME=FILE where they are at hand.",
    "`suite2p`, `caiman` (PyPI name), `deepinterpolation`, `minian`, `mesmerize-core` and `deepcad` on PyPI ship no "
    "recordings (checked: their wheels and sdists).",
)
"""Openly available recordings checked for the benchmark and why each is not in it (issue 29 item 1)."""

BUILTIN_MOVIES = {
    "allen-792757260": (RESEARCH / "allen_ophys_etl_pipelines" / "792757260_test_data.h5", "input_frames",
                        ALLEN_LICENCE),
    "allen-crop": (RESEARCH / "allen_ophys_etl_pipelines" / "movie_100x100x100.h5", "data", ALLEN_LICENCE),
}


def run(args, log, cwd=None):
    """Runs a child at low priority; returns (stdout, seconds). Stops the benchmark on failure."""
    print("$ " + " ".join(map(str, args)), flush=True)
    started = time.perf_counter()
    done = subprocess.run(["nice", *map(str, args)], capture_output=True, text=True, env=CHILD_ENVIRONMENT, cwd=cwd)
    with open(log, "a") as f:
        f.write("$ " + " ".join(map(str, args)) + "\n" + done.stderr + done.stdout)
    if done.returncode != 0:
        sys.exit(f"real_data: {' '.join(map(str, args))} failed ({done.returncode}):\n{done.stderr[-3000:]}")
    return done.stdout, time.perf_counter() - started


def load_movie(path, key=None):
    if key is not None:
        with h5py.File(path) as f:
            return np.asarray(f[key])
    return tifffile.imread(path)


# ------------------------------------------------------------------------------------- scoring

def band(image, low, high):
    return ndimage.gaussian_filter(image, low) - ndimage.gaussian_filter(image, high)


def find_regions(full_mean, min_area=8, max_area=400):
    """Bright compact regions of the full movie's temporal mean (local contrast above mean + 2 SD),
    as a label image."""
    local = ndimage.gaussian_filter(full_mean, 1.0) - ndimage.gaussian_filter(full_mean, 8.0)
    mask = local > local.mean() + 2 * local.std()
    labels, n = ndimage.label(mask)
    areas = ndimage.sum(mask, labels, index=np.arange(1, n + 1))
    keep = np.flatnonzero((areas >= min_area) & (areas <= max_area)) + 1
    relabelled = np.zeros_like(labels)
    for new, old in enumerate(keep, start=1):
        relabelled[labels == old] = new
    return relabelled


def region_traces(movie, labels):
    n = int(labels.max())
    return np.stack([movie[:, labels == i].mean(axis=1) for i in range(1, n + 1)]) if n else np.zeros((0, len(movie)))


def spike_f1(output_trace, reference_trace):
    """F1 of OASIS events inferred on the output's trace against those on the reference trace."""
    ref_events, _ = spikes.detect_events(spikes.infer_spikes(reference_trace))
    out_events, _ = spikes.detect_events(spikes.infer_spikes(output_trace))
    if len(ref_events) == 0:  # no clear event in the reference: nothing to find (F1 undefined)
        return None
    matched = spikes.match_events(list(ref_events), list(out_events))
    return 2 * matched / (len(ref_events) + len(out_events))


def detail_kept_against_dropped(out_mean, raw_mean, ref_mean, lo, hi):
    """The share of the stable detail in one band that the output keeps, measured against the
    dropped photons: the slope of the output's band on the scene's, cov(B D, B M) / cov(B R, B M)
    (R the thinned raw mean, M the dropped photons' mean: their noises are independent, so both
    covariances keep only the scene's stable detail). What `deepcad score`'s reference-free detail
    kept estimates from the thinned movie alone, so the calibration compares the two."""
    d, r, m = (band(x, lo, hi).ravel() for x in (out_mean, raw_mean, ref_mean))
    stable = np.cov(r, m)[0, 1]
    return float(np.cov(d, m)[0, 1] / stable) if stable > 0 else None


def score_output(estimate, raw_mean, dropped, keep, labels, reference_traces):
    """Every ground-truth-free score of one output (photons per frame at full light); `raw_mean`:
    the thinned raw movie's temporal mean in the same units."""
    reference = dropped / (1 - keep)
    mse = thinning.unbiased_mse(estimate, dropped, keep)
    power = thinning.unbiased_power(dropped, keep)
    out_mean, ref_mean = estimate.mean(axis=0), reference.mean(axis=0)
    detail = [spikes.pearson(band(out_mean, lo, hi).ravel(), band(ref_mean, lo, hi).ravel()) for lo, hi in BANDS]
    kept = [detail_kept_against_dropped(out_mean, raw_mean, ref_mean, lo, hi) for lo, hi in BANDS]
    traces = region_traces(estimate, labels)
    trace_r = [spikes.pearson(t, r) for t, r in zip(traces, reference_traces)]
    f1 = [v for v in (spike_f1(t, r) for t, r in zip(traces, reference_traces)) if v is not None]
    return {"snr_db": 10 * np.log10(power / mse) if mse > 0 else None, "mse_photons2": mse,
            "detail_r": detail, "detail_kept_vs_dropped": kept, "trace_r_median": float(np.median(trace_r)) if trace_r else None,
            "spike_f1_median": float(np.median(f1)) if f1 else None, "regions": len(trace_r)}


def moving_average(movie, window):
    return ndimage.uniform_filter1d(movie.astype(np.float32), window, axis=0, mode="reflect")


# ------------------------------------------------------------------------------------- methods

class Methods:
    """Runs each denoiser on one thinned movie; every output is a float32 TIFF in the folder."""

    def __init__(self, deepcad, budget_s, threads, log, skip_reference):
        self.deepcad, self.budget_s, self.threads, self.log = str(deepcad), budget_s, threads, log
        self.skip_reference = skip_reference

    def builtin(self, movie, folder):
        out = folder / "builtin.tif"
        self._denoise(movie, "default", out)
        return out

    def candidate(self, movie, folder, name, bundle, reuse):
        """Another built-in-style bundle (e.g. a retrained built-in model), untrained on the movie."""
        out = folder / f"{name}.tif"
        if not (reuse and out.is_file()):
            self._denoise(movie, bundle, out)
        return out

    def finetuned(self, movie, folder, seed):
        model = folder / "finetuned.safetensors"
        _, seconds = run([self.deepcad, "train", movie, "-o", model, "--resume", "default", "--time-budget",
                          f"{self.budget_s:g}s", "--seed", seed, "--device", "cpu", "--threads", self.threads], self.log)
        out = folder / "finetuned.tif"
        self._denoise(movie, model, out)
        return out, seconds

    def reference(self, movie, folder, seed):
        """DeepCAD-RT's PyTorch reference (eval/deepcad_reference.py) trained on the thinned movie for
        the same wall-clock budget; 64-pixel patches of 32 frames fit movies of 64 frames or more."""
        model, out = folder / "reference.pth", folder / "reference.tif"
        script = [sys.executable, HERE / "deepcad_reference.py", "--threads", self.threads]
        _, seconds = run([*script, "train", movie, "-o", model, "--time-budget", self.budget_s, "--patch", 64,
                          "--patch-t", 32, "--seed", seed], self.log)
        run([*script, "denoise", movie, "-m", model, "-o", out, "--patch", 64], self.log)
        return out, seconds

    def _denoise(self, movie, model, out):
        # The benchmark's own work file: an earlier run's output is replaced.
        run([self.deepcad, "denoise", movie, "-m", model, "-o", out, "--output-type", "float32", "--device", "cpu",
             "--threads", self.threads, "--overwrite", "-q"], self.log)


def clear(folder, names):
    """The benchmark's own earlier outputs in its work folder (never the user's data)."""
    for name in names:
        (folder / name).unlink(missing_ok=True)


def thinned_case(full, calibration, keep, folder, seed):
    """Writes thinned.tif (the detector's units, no read noise) and returns (kept, dropped) photons."""
    photons = thinning.to_photons(full, calibration)
    kept, dropped = thinning.thin(photons, keep, np.random.default_rng(seed))
    counts = np.clip(np.rint(calibration.offset + calibration.gain * kept), 0, 65535).astype(np.uint16)
    tifffile.imwrite(folder / "thinned.tif", counts, imagej=True, metadata={"axes": "TYX"})
    return kept, dropped


def residual_checks(deepcad, thinned, outputs, folder, log):
    """`deepcad score` without truth: each output's reference-free checks against the thinned movie."""
    path = folder / "scores.json"
    run([deepcad, "score", "--raw", thinned, "--json", path, "--overwrite", "-q",
         *[f"{name}={p}" for name, p in outputs.items()]], log)
    scores = json.loads(path.read_text())
    return {e["name"]: {k: v for k, v in e.items() if k not in ("name", "path")} for e in scores["entries"]}


def run_case(methods, name, full, calibration, keep, work, seed, log, reuse=False, candidates=None):
    """One movie at one thinning level. With reuse, the outputs left by an earlier run (same seed:
    the same thinned movie) are scored again without training (e.g. after `deepcad score` grew);
    the built-in model, which needs no training, denoises again (it may have been retrained).
    candidates: {name: bundle} of other built-in-style models to score next to the built-in one."""
    candidates = candidates or {}
    folder = work / name / f"keep-{keep:g}"
    folder.mkdir(parents=True, exist_ok=True)
    record_path = folder / "record.json"
    trained = reuse and record_path.is_file()
    if not trained:
        clear(folder, ["thinned.tif", "builtin.tif", "finetuned.tif", "finetuned.safetensors", "record.json",
                       "finetuned.best.safetensors", "reference.tif", "reference.pth", "scores.json"]
              + [f"mean{w}.tif" for w in WINDOWS])
    kept, dropped = thinned_case(full, calibration, keep, folder, seed)
    thinned = folder / "thinned.tif"
    if trained:
        earlier = json.loads(record_path.read_text())
        outputs = {k: Path(v) for k, v in earlier["frame_outputs"].items()
                   if not k.startswith("mean") and k not in earlier.get("candidates", {})}
        seconds = earlier["seconds"]
        outputs["builtin"] = methods.builtin(thinned, folder)
    else:
        outputs, seconds = {"raw": thinned, "builtin": methods.builtin(thinned, folder)}, {}
        outputs["finetuned"], seconds["finetuned_train_s"] = methods.finetuned(thinned, folder, seed)
        if not methods.skip_reference:
            outputs["reference"], seconds["reference_train_s"] = methods.reference(thinned, folder, seed)
    for candidate, bundle in candidates.items():
        outputs[candidate] = methods.candidate(thinned, folder, candidate, bundle, trained)
    thinned_counts = tifffile.imread(thinned)
    for w in WINDOWS:
        outputs[f"mean{w}"] = folder / f"mean{w}.tif"
        tifffile.imwrite(outputs[f"mean{w}"], moving_average(thinned_counts, w), imagej=True, metadata={"axes": "TYX"})
    labels = find_regions(thinning.to_photons(full, calibration).mean(axis=0).astype(np.float64))
    reference_traces = region_traces(dropped / (1 - keep), labels)
    def photons(path):  # an output in photons per frame at full light
        return (tifffile.imread(path).astype(np.float64) - calibration.offset) / calibration.gain / keep
    raw_mean = photons(thinned).mean(axis=0)
    scores = {method: score_output(photons(path), raw_mean, dropped, keep, labels, reference_traces)
              for method, path in outputs.items()}
    best = max(WINDOWS, key=lambda w: scores[f"mean{w}"]["snr_db"])
    residual = residual_checks(methods.deepcad, thinned, {k: v for k, v in outputs.items() if k != "raw"}, folder, log)
    for method, checks in residual.items():
        if method in scores:
            scores[method]["reference_free"] = checks
    record = {"keep": keep, "best_window": best, "scores": scores, "seconds": seconds, "candidates": candidates,
              "kept_photons_per_pixel_frame": float(kept.mean()),
              "frame_outputs": {k: str(v) for k, v in outputs.items()}}
    record_path.write_text(json.dumps(record, indent=1, default=float))
    return record


# ------------------------------------------------------------------------------------- report

PICTURED = (("raw", "thinned raw"), ("builtin", "built-in"), ("finetuned", "fine-tuned"),
            ("reference", "PyTorch reference"), ("mean21", "21-frame mean"))


def picture(name, full, cases, out):
    """One frame, middle of the movie: the full-light frame and each method on each thinned movie."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    frame = full.shape[0] // 2
    columns = [(k, t) for k, t in PICTURED if all(k in c["frame_outputs"] for c in cases)]
    fig, axes = plt.subplots(len(cases), len(columns) + 1, figsize=(2.4 * (len(columns) + 1), 2.5 * len(cases)))
    for row, case in zip(np.atleast_2d(axes), cases):
        images = [("full light", full[frame].astype(np.float32))]
        images += [(title, tifffile.imread(case["frame_outputs"][k])[frame].astype(np.float32)) for k, title in columns]
        for ax, (title, image) in zip(row, images):
            lo, hi = np.percentile(image, [1, 99.5])
            ax.imshow(image, cmap="gray", vmin=lo, vmax=hi)
            ax.set_title(f"{title}\n1/{round(1 / case['keep'])} photons" if title != "full light" else title,
                         fontsize=8)
            ax.axis("off")
    fig.suptitle(f"{name}, frame {frame}", fontsize=9)
    fig.tight_layout()
    fig.savefig(out, dpi=90)
    plt.close(fig)


def fmt(v, digits=3):
    return "–" if v is None else f"{v:.{digits}f}"


def retention(scores, sigma):
    """`deepcad score`'s detail retention at scale sigma (None when not measured or not reported)."""
    detail = (scores.get("reference_free") or {}).get("detail_retention") or {}
    return next((s["retention"] for s in detail.get("scales", []) if s["sigma_px"] == sigma), None)


def verdict_lines(results):
    """The built-in model against the 5-minute fine-tune: within 1 dB and 0.01 trace r?"""
    lines = ["## Built-in model against a fine-tune on the movie", "",
             "The bar (issue 29): the built-in model within 1 dB SNR and 0.01 trace r of the fine-tuned one.", "",
             "| movie | photons | model | SNR − fine-tuned (dB) | trace r − fine-tuned | within the bar |",
             "|---|---|---|---|---|---|"]
    for movie in results:
        for case in movie["cases"]:
            f = case["scores"]["finetuned"]
            for model in ["builtin", *case.get("candidates", {})]:
                b = case["scores"][model]
                d_snr = b["snr_db"] - f["snr_db"]
                d_r = (None if None in (b["trace_r_median"], f["trace_r_median"])
                       else b["trace_r_median"] - f["trace_r_median"])
                ok = d_snr >= -1 and (d_r is None or d_r >= -0.01)
                lines.append(f"| {movie['name']} | 1/{round(1 / case['keep'])} | {model} | {d_snr:+.2f} | "
                             f"{'–' if d_r is None else f'{d_r:+.3f}'} | {'yes' if ok else '**no**'} |")
    return lines + [""]


def calibration_lines(results):
    """Does `deepcad score`'s reference-free detail kept (from the thinned movie alone) agree with the
    detail kept measured against the dropped photons? Over every output but raw (movie × thinning ×
    method), per band: Pearson r and the median absolute difference."""
    lines = ["## Calibration of the reference-free detail kept", "",
             "`deepcad score`'s detail kept (from the thinned movie alone: its halves' temporal means in a "
             "one-octave band) against the same share measured with the photons thinning dropped (the slope "
             "of the output's band on the scene's: cov(output, dropped) / cov(thinned raw, dropped)), over every "
             "output but raw where the thinned halves share enough detail to measure it.", ""]
    for sigma, band_index in ((1.0, 0), (2.0, 1), (4.0, 2)):
        # (reference-free, against the dropped photons, a network's output?) for every output measured both ways
        points = [(retention(s, sigma), s["detail_kept_vs_dropped"][band_index], not name.startswith("mean"))
                  for movie in results for case in movie["cases"] for name, s in case["scores"].items()
                  if name != "raw" and retention(s, sigma) is not None
                  and s.get("detail_kept_vs_dropped", [None] * 3)[band_index] is not None]
        lo, hi = BANDS[band_index]
        if len(points) >= 3:
            x, y, nets = (np.array(column) for column in zip(*points))
            lines.append(f"- band {lo}–{hi} px (σ {sigma:g}): Pearson r {spikes.pearson(x, y):.3f}, median |difference| "
                         f"{np.median(np.abs(x - y)):.3f}, over {len(points)} outputs; the networks' outputs alone "
                         f"({nets.sum()}): r {spikes.pearson(x[nets], y[nets]):.3f}, median |difference| "
                         f"{np.median(np.abs(x[nets] - y[nets])):.3f}.")
        else:
            lines.append(f"- band {lo}–{hi} px (σ {sigma:g}): measurable on {len(points)} outputs only (the thinned "
                         "halves share too little stable detail).")
    return lines + [""]


def case_rows(case):
    rows = []
    order = ["raw", "builtin", *case.get("candidates", {}), "finetuned", "reference", "mean21",
             f"mean{case['best_window']}"]
    for method in dict.fromkeys(order):
        s = case["scores"].get(method)
        if s is None:
            continue
        label = method + (" (best window, oracle)" if method == f"mean{case['best_window']}" else "")
        residual = (s.get("reference_free") or {}).get("residual") or {}
        rows.append(f"| 1/{round(1 / case['keep'])} | {label} | {fmt(s['snr_db'], 2)} | "
                    + " | ".join(fmt(r) for r in s["detail_r"])
                    + f" | {fmt(s['trace_r_median'])} | {fmt(s['spike_f1_median'])} | "
                    f"{fmt(residual.get('lag1_autocorrelation'))} | {fmt(retention(s, 1.0))} | {fmt(retention(s, 2.0))} | "
                    f"{fmt(retention(s, 4.0))} | {fmt((s.get('detail_kept_vs_dropped') or [None] * 3)[1])} |")
    return rows


def markdown(results, budget_s):
    lines = ["# Real movies without ground truth: the thinning benchmark", "",
             "Generated by `eval/real_data.py`. Each real movie's photons are binomially thinned to 1/5 and "
             "1/20; methods denoise the thinned movie and are scored against the photons thinning dropped "
             "(an independent recording of the same scene; its shot noise is subtracted from the SNR). "
             f"Fine-tuned: `deepcad train --resume default --time-budget {budget_s:g}s` on the thinned movie. "
             "Detail r: correlation of the temporal means in three spatial bands (fine to coarse); trace r and "
             "spike F1: regions found on the full movie. Detail kept: `deepcad score`'s reference-free share of the "
             "movie's stable detail the output keeps (one-octave bands around σ 1, 2, 4 px; – where the thinned "
             "halves share too little to measure), and the same share for σ 2 measured against the dropped photons. "
             "Timings under load (2 shared cores).", "",
             "The thinning itself is checked on simulated data, where the truth is known "
             "(`python eval/thinning.py --check`): [thinning-check.md](thinning-check.md).", ""]
    candidates = {k: v for movie in results for case in movie["cases"] for k, v in case.get("candidates", {}).items()}
    if candidates:
        lines += ["Also scored untrained on the movies, next to the built-in model: "
                  + "; ".join(f"`{k}` = {Path(v).name}" for k, v in candidates.items()) + ".", ""]
    for movie in results:
        c = movie["calibration"]
        lines += [f"## {movie['name']}", "",
                  f"{'×'.join(map(str, movie['shape']))} {movie['dtype']}. Licence: {movie['licence']}. "
                  f"Variance-mean fit: gain {c['gain']:.1f} counts/photon, offset {c['offset']:.1f}, "
                  f"r {c['fit_r']:.3f}; {c['mean_photons']:.3f} photons per pixel and frame at full light; "
                  f"regions found on the full movie: {movie['cases'][0]['scores']['raw']['regions']}.", "",
                  "| photons | method | SNR dB | detail r 0.7–1.4 px | 1.4–2.8 px | 2.8–5.6 px | trace r | "
                  "spike F1 | residual lag-1 r | detail kept σ1 | σ2 | σ4 | σ2 against the dropped photons |",
                  "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
        for case in movie["cases"]:
            lines += case_rows(case)
        lines += ["", f"![{movie['name']}]({movie['name']}.png)", ""]
    lines += verdict_lines(results) + calibration_lines(results)
    lines += ["## Other recordings checked", ""] + [f"- {words}" for words in CONSIDERED_NOT_USED] + [""]
    return "\n".join(lines) + "\n"


def movies_to_run(extra):
    movies = [(name, load_movie(path, key), licence) for name, (path, key, licence) in BUILTIN_MOVIES.items()
              if path.is_file()]
    for spec in extra:
        name, _, path = spec.partition("=")
        movies.append((name, load_movie(path), "given with --movie: record its licence"))
    return movies


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "evaluation" / "real-data")
    parser.add_argument("--work", type=Path, default=Path("/tmp/deepcad-real-data"))
    parser.add_argument("--deepcad", type=Path, default=ROOT / "target" / "release" / "deepcad")
    parser.add_argument("--budget", type=float, default=300, help="fine-tuning (and reference) seconds")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--skip-reference", action="store_true")
    parser.add_argument("--keeps", default=",".join(map(str, KEEPS)))
    parser.add_argument("--reuse", action="store_true",
                        help="score the outputs an earlier run left in --work again, without training")
    parser.add_argument("--movie", action="append", default=[], metavar="NAME=FILE")
    parser.add_argument("--candidate", action="append", default=[], metavar="NAME=BUNDLE",
                        help="also score this bundle untrained on the movie, next to the built-in model")
    a = parser.parse_args()
    candidates = dict(c.split("=", 1) for c in a.candidate)
    if set(candidates) & {"raw", "builtin", "finetuned", "reference"} or any(c.startswith("mean") for c in candidates):
        parser.error("--candidate: give the bundle a name of its own (not raw, builtin, finetuned, reference, mean…)")
    a.out.mkdir(parents=True, exist_ok=True)
    a.work.mkdir(parents=True, exist_ok=True)
    log = a.work / "commands.log"
    methods = Methods(a.deepcad, a.budget, a.threads, log, a.skip_reference)
    results = []
    for name, full, licence in movies_to_run(a.movie):
        calibration = thinning.estimate_gain_offset(full)
        cases = [run_case(methods, name, full, calibration, float(k), a.work, a.seed, log, a.reuse, candidates)
                 for k in a.keeps.split(",")]
        picture(name, full, cases, a.out / f"{name}.png")
        results.append({"name": name, "shape": list(full.shape), "dtype": str(full.dtype), "licence": licence,
                        "calibration": vars(calibration), "cases": cases})
        (a.out / "real-data.json").write_text(json.dumps(results, indent=1, default=float))
    (a.out / "real-data.md").write_text(markdown(results, a.budget))
    print(markdown(results, a.budget))


if __name__ == "__main__":
    main()
