"""Restoring fast events a denoiser removed: the Python mirror of the engine's `--restore-events`
(src/infer/event_restoration.rs and cell_map.rs), for experiments with other thresholds.

A self-supervised denoiser predicts each frame from its neighbours, so a transient shorter than the
frame spacing is partly missing from its output and sits in the residual `raw - output`, mixed with
the noise. In one frame the noise is white while a neuron's transient is cell-shaped, so a spatial
Gaussian of about a cell's radius (sigma) keeps the transient and shrinks the noise by 1/(4 pi
sigma^2); a Wiener-like gain r^2 / (r^2 + (k sd)^2) then lets through what stands out of the smoothed
noise (sd: each frame's robust spread of the smoothed residual), and a cell map w (1 on the cells, 0
in the background, from the raw movie's mean) keeps it where a neuron can be:

    restored = output + w * G_sigma(raw - output) * gain

k trades SNR for events: larger k adds less noise back and restores fewer events. The cell map of a
frame in chunk c >= 1 (CELL_MAP_FRAMES frames each) is made from the mean of chunk c - 1, in the first
chunk from the mean of frames 0..t: no frame after it is needed, and it does not depend on blocks.

`python eval/event_restoration.py RAW DENOISED -o OUT [--k 1]` writes the restored movie (float32).
"""

import numpy as np
from scipy.ndimage import gaussian_filter

SIGMA_PX = 3.0
"""Spatial Gaussian on the residual, in pixels: about a simulated soma's radius."""
ENGINE_K = 1.0
"""The engine's Wiener threshold (EVENT_THRESHOLD_SDS)."""
CELL_MAP_FRAMES = 100
CELL_MAP_SIGMA_PX = 1.0


def cell_map(mean):
    """The soft map of a mean frame: smoothed, its median to 0 and its 99th percentile to 1, clipped."""
    smoothed = gaussian_filter(np.asarray(mean, dtype=np.float64), CELL_MAP_SIGMA_PX, mode="constant", cval=0.0)
    # The engine renormalises the kernel at the borders; so does dividing by the smoothed ones.
    smoothed /= gaussian_filter(np.ones_like(smoothed), CELL_MAP_SIGMA_PX, mode="constant", cval=0.0)
    low, high = np.quantile(smoothed, 0.5, method="nearest"), np.quantile(smoothed, 0.99, method="nearest")
    if not high > low:
        return np.ones_like(smoothed, dtype=np.float32)
    return np.clip((smoothed - low) / (high - low), 0, 1).astype(np.float32)


def cell_maps(raw):
    """The cell map of every frame of `raw` (T, H, W), by the chunk rule above."""
    raw = np.asarray(raw, dtype=np.float64)
    maps = np.empty(raw.shape, dtype=np.float32)
    prefix = np.cumsum(raw[:CELL_MAP_FRAMES], axis=0)
    for t in range(min(len(raw), CELL_MAP_FRAMES)):
        maps[t] = cell_map(prefix[t] / (t + 1))
    for start in range(CELL_MAP_FRAMES, len(raw), CELL_MAP_FRAMES):
        maps[start:start + CELL_MAP_FRAMES] = cell_map(raw[start - CELL_MAP_FRAMES:start].mean(axis=0))
    return maps


def restore_events(raw, output, k=ENGINE_K, sigma=SIGMA_PX, cells=True):
    """`output` plus the residual's cell-sized, above-noise part (see the module), as float32;
    `cells=False`: everywhere, without the cell map (the first version)."""
    raw = np.asarray(raw, dtype=np.float32)
    output = np.asarray(output, dtype=np.float32)
    smoothed = np.stack([gaussian_filter(frame, sigma) for frame in raw - output])
    centre = np.median(smoothed, axis=(1, 2), keepdims=True)
    sd = 1.4826 * np.median(np.abs(smoothed - centre), axis=(1, 2), keepdims=True)
    squared = smoothed * smoothed
    added = smoothed * squared / (squared + (k * sd) ** 2 + np.float32(1e-12))
    return output + (cell_maps(raw) * added if cells else added)


def main():
    import argparse
    import tifffile
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("raw")
    parser.add_argument("denoised")
    parser.add_argument("-o", "--output", required=True)
    parser.add_argument("--k", type=float, default=ENGINE_K, help=f"Wiener threshold in noise SDs (default {ENGINE_K:g})")
    parser.add_argument("--sigma", type=float, default=SIGMA_PX, help=f"Gaussian in pixels (default {SIGMA_PX:g})")
    a = parser.parse_args()
    tifffile.imwrite(a.output, restore_events(tifffile.imread(a.raw), tifffile.imread(a.denoised), a.k, a.sigma))


if __name__ == "__main__":
    main()
