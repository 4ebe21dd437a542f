"""Tests of the photon-count estimation and binomial thinning (eval/thinning.py) on the project's own
simulator, whose gain, offset and photon level are known: `pytest eval/test_thinning.py` in the
evaluation environment (a few seconds; needs target/release/deepcad or target/debug/deepcad, and is
skipped with the reason printed when neither is built)."""

from pathlib import Path

import numpy as np
import pytest

import thinning

ROOT = Path(__file__).resolve().parent.parent
BINARY = next((p for p in (ROOT / "target" / "release" / "deepcad", ROOT / "target" / "debug" / "deepcad")
               if p.is_file()), None)
needs_binary = pytest.mark.skipif(BINARY is None, reason="no deepcad binary built (cargo build --bin deepcad)")

GAIN, OFFSET = thinning.CHECK_GAIN, thinning.CHECK_OFFSET


@needs_binary
def test_gain_and_offset_are_recovered(tmp_path):
    noisy, _ = thinning.simulate(BINARY, tmp_path, photons=10, read_noise=2.0)
    calibration = thinning.estimate_gain_offset(noisy)
    assert abs(calibration.gain - GAIN) < 0.1 * GAIN, calibration
    # Read noise of 2 counts shifts the zero-variance point by read_var / gain = 4/3 counts.
    assert abs(calibration.offset - OFFSET) < 0.1 * GAIN * 10, calibration
    assert calibration.fit_r > 0.99


@needs_binary
def test_thinned_movie_matches_a_dimmer_simulation(tmp_path):
    """Thinning 10-photon data to 1/5 gives what the simulator gives at 2 photons: the same mean
    photon count per pixel (within noise), Poisson statistics (variance = mean), dropped photons
    independent of the kept ones, and errors measured from the dropped photons equal to the true ones."""
    c = thinning.simulated_check(BINARY, tmp_path)
    assert abs(c["z_mean"]) < 0.2 and 0.8 < c["z_sd"] < 1.2, c
    assert abs(c["mean_ratio"] - 1) < 0.03, c
    assert abs(c["poisson_ratio_thinned"] - 1) < 0.05 and abs(c["poisson_ratio_simulated"] - 1) < 0.05, c
    assert abs(c["noise_r"]) < 0.02, c
    assert abs(c["mse_ratio"] - 1) < 0.05 and abs(c["power_ratio"] - 1) < 0.05, c
    assert "| 1 |" in thinning.check_markdown(c)


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
