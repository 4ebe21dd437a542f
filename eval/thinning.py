"""A dimmer recording of exactly the same scene, made from a real movie: photon-count estimation
and binomial thinning.

A detector reports `counts = offset + gain * photons (+ read noise)` per pixel and frame, so for
shot-noise-limited data each pixel's temporal variance grows linearly with its mean:
`var = gain * (mean - offset) + read_var`. `estimate_gain_offset` fits that line (on frame-to-frame
differences, which remove slow signal changes, in bins of equal pixel count, with the median per
bin so that the few pixels with real activity do not pull it) and folds the read noise into the
offset (`offset = mean at zero variance`): that is enough to turn counts back into whole photons.

`thin(photons, keep, rng)` keeps each photon with probability `keep` (binomial thinning): the result
is exactly what the same scene gives with `keep` times the light, Poisson with mean `keep * rate`,
and the photons it drops (the complement) are an *independent* Poisson recording with mean
`(1 - keep) * rate`. The complement is the real-data benchmark's reference: a denoiser's output of
the thinned movie, scaled by `1/keep`, is compared with `complement / (1 - keep)`, whose noise is
independent of everything the denoiser saw, so its expected squared error is the true error plus
the complement's known Poisson variance (`unbiased_mse` subtracts it). No ground truth needed.
"""

import argparse
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import tifffile


@dataclass
class Calibration:
    """Detector gain (counts per photon), offset (counts at zero photons) and the fit's quality."""
    gain: float
    offset: float
    fit_r: float
    mean_photons: float


def estimate_gain_offset(movie, bins=20):
    """Fits var = gain * (mean - offset) from each pixel's temporal mean and the half-variance of its
    frame-to-frame differences (which removes slow drift and most of the calcium signal). Bins of
    equal pixel count; the median of each bin; a least-squares line through the bin medians."""
    data = np.asarray(movie, dtype=np.float64)
    if data.ndim != 3 or data.shape[0] < 3:
        raise ValueError(f"thinning: a movie of shape {data.shape} has no time axis of 3 or more frames")
    mean = data.mean(axis=0).ravel()
    variance = (np.diff(data, axis=0).var(axis=0) / 2).ravel()
    edges = np.quantile(mean, np.linspace(0, 1, bins + 1))
    centres, spreads = [], []
    for low, high in zip(edges[:-1], edges[1:]):
        inside = (mean >= low) & (mean <= high)
        if inside.sum() >= 10:
            centres.append(np.median(mean[inside]))
            spreads.append(np.median(variance[inside]))
    centres, spreads = np.array(centres), np.array(spreads)
    gain, intercept = np.polyfit(centres, spreads, 1)
    fit_r = float(np.corrcoef(centres, spreads)[0, 1])
    if not (gain > 0 and fit_r > 0.5):
        raise ValueError(f"thinning: the variance does not grow with the mean (slope {gain:.3g}, r {fit_r:.2f}); "
                         "this movie is not shot-noise limited (already denoised or averaged?)")
    offset = -intercept / gain
    return Calibration(gain=float(gain), offset=float(offset), fit_r=fit_r,
                       mean_photons=float(max(mean.mean() - offset, 0.0) / gain))


def to_photons(movie, calibration):
    """Whole photon counts (rounded, never negative) under the calibration."""
    photons = (np.asarray(movie, dtype=np.float64) - calibration.offset) / calibration.gain
    return np.clip(np.rint(photons), 0, None).astype(np.int64)


def thin(photons, keep, rng):
    """(kept, dropped): each photon kept with probability `keep`; kept ~ Poisson(keep * rate) and
    dropped ~ Poisson((1 - keep) * rate), independent of each other."""
    if not 0 < keep < 1:
        raise ValueError(f"thinning: keep fraction {keep} must lie strictly between 0 and 1")
    kept = rng.binomial(photons, keep)
    return kept, photons - kept


def unbiased_mse(estimate, dropped, keep):
    """Mean squared error of `estimate` (photons at full light) against the true rate, from the
    dropped photons alone: E[(y - d/(1-k))^2] = MSE + rate/(1-k) and E[d/(1-k)^2] = rate/(1-k)."""
    reference = dropped / (1 - keep)
    return float(np.mean((estimate - reference) ** 2 - dropped / (1 - keep) ** 2))


def unbiased_power(dropped, keep):
    """Mean squared true rate, from the dropped photons: E[(d/(1-k))^2] - E[d/(1-k)^2]."""
    reference = dropped / (1 - keep)
    return float(np.mean(reference ** 2 - dropped / (1 - keep) ** 2))


# The simulator's detector in the check below: counts = OFFSET + GAIN * photons.
CHECK_GAIN, CHECK_OFFSET = 3.0, 100.0


def simulate(deepcad, folder, photons, seed=7, read_noise=0.0):
    """(noisy, truth) counts of the project's simulator at `photons`; the scene depends on the seed
    alone, so two calls with one seed are the same scene at two light levels."""
    raw, truth = Path(folder) / f"raw-{photons}.tif", Path(folder) / f"truth-{photons}.tif"
    subprocess.run([str(deepcad), "simulate", "-q", "-o", raw, "--truth", truth, "--width", "64", "--height", "64",
                    "--frames", "300", "--neurons", "12", "--photons", str(photons), "--gain", str(CHECK_GAIN),
                    "--offset", str(CHECK_OFFSET), "--read-noise", str(read_noise), "--seed", str(seed),
                    "--overwrite"], check=True)
    return tifffile.imread(raw).astype(np.float64), tifffile.imread(truth).astype(np.float64)


def simulated_check(deepcad, folder, bright=10, keep=0.2):
    """The benchmark's premise checked where the truth is known: a simulated movie at `bright`
    photons thinned to `keep` against the same scene simulated at `keep * bright` photons. Returns
    the numbers the tests bound and the report prints."""
    full, full_truth = simulate(deepcad, folder, bright)
    dim, dim_truth = simulate(deepcad, folder, bright * keep)
    calibration = estimate_gain_offset(full)
    kept, dropped = thin(to_photons(full, calibration), keep, np.random.default_rng(0))
    dim_photons = (dim - CHECK_OFFSET) / CHECK_GAIN
    true_rate = (dim_truth - CHECK_OFFSET) / CHECK_GAIN
    # Per-pixel temporal means against the dimmer truth, in units of their shot noise.
    z = (kept.mean(0) - true_rate.mean(0)) / np.sqrt(true_rate.mean(0) / kept.shape[0] + 1e-9)

    def poisson_ratio(movie):  # variance of frame differences over twice the mean: 1 for Poisson
        return float((np.diff(movie, axis=0).var(0) / 2).mean() / movie.mean())

    full_rate = (full_truth - CHECK_OFFSET) / CHECK_GAIN
    noise_r = np.corrcoef((kept - keep * full_rate).ravel(), (dropped - (1 - keep) * full_rate).ravel())[0, 1]
    # A stand-in denoiser (5-frame moving average of the kept photons at full light): its error from
    # the dropped photons alone against its error from the truth.
    estimate = np.apply_along_axis(lambda v: np.convolve(v, np.ones(5) / 5, mode="same"), 0, kept / keep)
    true_mse = float(np.mean((estimate - full_rate) ** 2))
    return {"bright_photons": bright, "keep": keep, "gain": calibration.gain, "offset": calibration.offset,
            "true_gain": CHECK_GAIN, "true_offset": CHECK_OFFSET, "fit_r": calibration.fit_r,
            "z_mean": float(z.mean()), "z_sd": float(z.std()),
            "mean_ratio": float(kept.mean() / dim_photons.mean()),
            "poisson_ratio_thinned": poisson_ratio(kept), "poisson_ratio_simulated": poisson_ratio(dim_photons),
            "noise_r": float(noise_r), "mse_ratio": unbiased_mse(estimate, dropped, keep) / true_mse,
            "power_ratio": unbiased_power(dropped, keep) / float(np.mean(full_rate ** 2))}


def check_markdown(c):
    """The check's numbers as the report's section."""
    dim = c["bright_photons"] * c["keep"]
    return "\n".join([
        "# Thinning checked on simulated data", "",
        f"Generated by `python eval/thinning.py --check`. The project's simulator (64×64×300, 12 neurons, gain "
        f"{c['true_gain']:g}, offset {c['true_offset']:g}, no read noise) draws one scene at {c['bright_photons']:g} "
        f"and at {dim:g} photons. The {c['bright_photons']:g}-photon movie is calibrated from its variance–mean "
        f"relation and thinned to {c['keep']:g} of its photons, as `eval/real_data.py` does with real movies.", "",
        "| check | thinned | expected |", "|---|---|---|",
        f"| gain, offset from the variance–mean fit | {c['gain']:.3f}, {c['offset']:.2f} (fit r {c['fit_r']:.4f}) | "
        f"{c['true_gain']:g}, {c['true_offset']:g} |",
        f"| mean photons, thinned ÷ simulated at {dim:g} photons | {c['mean_ratio']:.4f} | 1 |",
        f"| per-pixel temporal means against the {dim:g}-photon truth, in shot-noise units: mean, SD | "
        f"{c['z_mean']:.3f}, {c['z_sd']:.3f} | 0, 1 |",
        f"| frame-difference variance ÷ mean (Poisson: 1) | {c['poisson_ratio_thinned']:.4f} | "
        f"{c['poisson_ratio_simulated']:.4f} (the {dim:g}-photon simulation) |",
        f"| correlation of the kept and the dropped photons' noise | {c['noise_r']:.4f} | 0 (independent) |",
        f"| a 5-frame mean's error from the dropped photons ÷ its error from the truth | {c['mse_ratio']:.4f} | 1 |",
        f"| signal power from the dropped photons ÷ from the truth | {c['power_ratio']:.4f} | 1 |", ""])


def main():
    parser = argparse.ArgumentParser(description="Checks the thinning on simulated data and writes its report.")
    root = Path(__file__).resolve().parent.parent
    parser.add_argument("--check", action="store_true", required=True)
    parser.add_argument("--deepcad", type=Path, default=root / "target" / "release" / "deepcad")
    parser.add_argument("--out", type=Path, default=root / "docs" / "evaluation" / "real-data" / "thinning-check.md")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        text = check_markdown(simulated_check(args.deepcad, folder))
    args.out.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
