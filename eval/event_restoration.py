"""Restoring fast events a denoiser removed (an experiment for issue 23, not in the engine).

A self-supervised denoiser predicts each frame from its neighbours, so a transient shorter than the
frame spacing is partly missing from its output and sits in the residual `raw - output`, mixed with
the noise. In one frame the noise is white while a neuron's transient is cell-shaped, so a spatial
Gaussian of about a cell's radius (sigma) keeps the transient and shrinks the noise by 1/(4 pi
sigma^2); a Wiener-like gain r^2 / (r^2 + (k sd)^2) then lets through what stands out of the smoothed
noise (sd: each frame's robust spread of the smoothed residual) and damps the rest:

    restored = output + G_sigma(raw - output) * gain

k trades SNR for events: larger k adds less noise back and restores fewer events.

`python eval/event_restoration.py RAW DENOISED -o OUT [--k 3]` writes the restored movie (float32).
"""

import numpy as np
from scipy.ndimage import gaussian_filter

SIGMA_PX = 3.0
"""Spatial Gaussian on the residual, in pixels: about a simulated soma's radius."""


def restore_events(raw, output, k, sigma=SIGMA_PX):
    """`output` plus the residual's cell-sized, above-noise part (see the module), as float32."""
    raw = np.asarray(raw, dtype=np.float32)
    output = np.asarray(output, dtype=np.float32)
    smoothed = np.stack([gaussian_filter(frame, sigma) for frame in raw - output])
    centre = np.median(smoothed, axis=(1, 2), keepdims=True)
    sd = 1.4826 * np.median(np.abs(smoothed - centre), axis=(1, 2), keepdims=True)
    squared = smoothed * smoothed
    return output + smoothed * squared / (squared + (k * sd) ** 2 + np.float32(1e-12))


def main():
    import argparse
    import tifffile
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("raw")
    parser.add_argument("denoised")
    parser.add_argument("-o", "--output", required=True)
    parser.add_argument("--k", type=float, default=3.0, help="Wiener threshold in noise SDs (default 3)")
    parser.add_argument("--sigma", type=float, default=SIGMA_PX, help=f"Gaussian in pixels (default {SIGMA_PX:g})")
    a = parser.parse_args()
    tifffile.imwrite(a.output, restore_events(tifffile.imread(a.raw), tifffile.imread(a.denoised), a.k, a.sigma))


if __name__ == "__main__":
    main()
