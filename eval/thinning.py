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

from dataclasses import dataclass

import numpy as np


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
