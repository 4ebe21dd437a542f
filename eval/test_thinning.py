"""Tests of the photon-count estimation and binomial thinning (eval/thinning.py) on the project's own
simulator, whose gain, offset and photon level are known: `pytest eval/test_thinning.py` in the
evaluation environment (a few seconds; needs target/release/deepcad or target/debug/deepcad, and is
skipped with the reason printed when neither is built)."""

import subprocess
from pathlib import Path

import numpy as np
import pytest
import tifffile

import thinning

ROOT = Path(__file__).resolve().parent.parent
BINARY = next((p for p in (ROOT / "target" / "release" / "deepcad", ROOT / "target" / "debug" / "deepcad")
               if p.is_file()), None)
needs_binary = pytest.mark.skipif(BINARY is None, reason="no deepcad binary built (cargo build --bin deepcad)")

GAIN, OFFSET = 3.0, 100.0


def simulate(tmp_path, photons, seed=7, read_noise=0.0):
    """(noisy, truth) of the same scene at `photons` (the scene depends on the seed alone)."""
    raw, truth = tmp_path / f"raw-{photons}.tif", tmp_path / f"truth-{photons}.tif"
    subprocess.run([BINARY, "simulate", "-q", "-o", raw, "--truth", truth, "--width", "64", "--height", "64",
                    "--frames", "300", "--neurons", "12", "--photons", str(photons), "--gain", str(GAIN),
                    "--offset", str(OFFSET), "--read-noise", str(read_noise), "--seed", str(seed)], check=True)
    return tifffile.imread(raw).astype(np.float64), tifffile.imread(truth).astype(np.float64)


@needs_binary
def test_gain_and_offset_are_recovered(tmp_path):
    noisy, _ = simulate(tmp_path, photons=10, read_noise=2.0)
    calibration = thinning.estimate_gain_offset(noisy)
    assert abs(calibration.gain - GAIN) < 0.1 * GAIN, calibration
    # Read noise of 2 counts shifts the zero-variance point by read_var / gain = 4/3 counts.
    assert abs(calibration.offset - OFFSET) < 0.1 * GAIN * 10, calibration
    assert calibration.fit_r > 0.99


@needs_binary
def test_thinned_movie_matches_a_dimmer_simulation(tmp_path):
    """Thinning 10-photon data to 1/5 gives what the simulator gives at 2 photons: the same mean
    photon count per pixel (within noise) and Poisson statistics (variance = mean)."""
    bright, bright_truth = simulate(tmp_path, photons=10)
    dim, dim_truth = simulate(tmp_path, photons=2)
    photons = thinning.to_photons(bright, thinning.estimate_gain_offset(bright))
    kept, dropped = thinning.thin(photons, 0.2, np.random.default_rng(0))
    dim_photons = (dim - OFFSET) / GAIN
    true_rate = (dim_truth - OFFSET) / GAIN
    # Same scene, same light: the per-pixel temporal means agree within their shot noise.
    frames = kept.shape[0]
    z = (kept.mean(0) - true_rate.mean(0)) / np.sqrt(true_rate.mean(0) / frames + 1e-9)
    assert abs(z.mean()) < 0.2 and 0.8 < z.std() < 1.2, (z.mean(), z.std())
    assert abs(kept.mean() / dim_photons.mean() - 1) < 0.03
    # Poisson: the variance of frame differences over twice the mean is 1, as for the dimmer simulation.
    for movie in (kept, dim_photons):
        ratio = (np.diff(movie, axis=0).var(0) / 2).mean() / movie.mean()
        assert abs(ratio - 1) < 0.05, ratio
    # The dropped photons are an independent recording: their noise does not correlate with the kept ones'.
    bright_rate = (bright_truth - OFFSET) / GAIN
    kept_noise = kept - 0.2 * bright_rate
    dropped_noise = dropped - 0.8 * bright_rate
    assert abs(np.corrcoef(kept_noise.ravel(), dropped_noise.ravel())[0, 1]) < 0.02


@needs_binary
def test_unbiased_mse_recovers_the_error_against_truth(tmp_path):
    """The reference-from-dropped-photons error equals the error against the simulator's truth."""
    noisy, truth = simulate(tmp_path, photons=5)
    photons = thinning.to_photons(noisy, thinning.Calibration(GAIN, OFFSET, 1.0, 0.0))
    rate = (truth - OFFSET) / GAIN
    kept, dropped = thinning.thin(photons, 0.2, np.random.default_rng(1))
    # A denoiser stand-in: the kept photons, 5-frame moving average, scaled to full light.
    estimate = np.apply_along_axis(lambda v: np.convolve(v, np.ones(5) / 5, mode="same"), 0, kept / 0.2)
    true_mse = float(np.mean((estimate - rate) ** 2))
    assert abs(thinning.unbiased_mse(estimate, dropped, 0.2) / true_mse - 1) < 0.05
    assert abs(thinning.unbiased_power(dropped, 0.2) / float(np.mean(rate ** 2)) - 1) < 0.05


def test_refuses_a_movie_without_shot_noise():
    flat = np.broadcast_to(np.linspace(100, 200, 64 * 64).reshape(1, 64, 64), (20, 64, 64))
    with pytest.raises(ValueError, match="shot-noise"):
        thinning.estimate_gain_offset(flat + np.random.default_rng(0).normal(0, 1, (20, 64, 64)))


def test_thinning_keeps_every_photon_once():
    photons = np.random.default_rng(2).poisson(3.0, (50, 8, 8))
    kept, dropped = thinning.thin(photons, 0.05, np.random.default_rng(3))
    assert (kept >= 0).all() and (dropped >= 0).all() and (kept + dropped == photons).all()
    assert abs(kept.mean() / photons.mean() - 0.05) < 0.01
    with pytest.raises(ValueError):
        thinning.thin(photons, 1.0, np.random.default_rng(3))
