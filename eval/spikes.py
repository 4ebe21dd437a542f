"""Spike inference as a user would run it, scored against the simulator's true spikes.

For each neuron: its trace is the mean of the movie over its label mask, frame by frame (label n in
`deepcad simulate --labels` is neuron n, column `neuron_n` of `--spikes`); OASIS (PyPI
`oasis-deconv`, pinned by scripts/evaluate.sh) deconvolves it with an AR(2) model whose parameters
are all estimated from that trace: the AR coefficients g from its autocovariance, the noise level
sn from its high-frequency power spectrum, the baseline b in the fit; L1 penalty under the noise
constraint (the library's defaults for AR(2)). No ground truth enters the inference.

Two scores per neuron, then the median over neurons:

* **spike r**: Pearson r between the inferred spike train s and the true spike counts per frame,
  both smoothed by a Gaussian of sigma = 1 frame (so a spike inferred one frame off still counts
  most of its weight);
* **event F1** with a +-1-frame tolerance. True events are frames with at least one spike.
  Inferred events, from s alone:
    1. candidates are the local maxima of s smoothed as above (s_hat); a candidate's *amount* is
       the inferred spike amount within +-2 frames of it (the smoothing kernel's reach), so a spike
       that OASIS splits over two frames counts whole;
    2. the single-spike amount A is estimated from the trace: the median amount of the candidates
       that stand clearly above the noise, i.e. whose own calcium transient (their spikes convolved
       with the fitted AR(2) impulse response) has an L2 norm of at least 3 noise SDs (a
       matched-filter SNR of 3, where a transient of known shape stands out of white noise). The
       noise SD is the trace's robust spread, 1.4826 x its median absolute deviation, not OASIS's sn:
       sn comes from the trace's highest frequencies, which any smoothing (a denoiser, a moving
       average) removes, and with sn too small OASIS fits many small noise events that would then
       set A. (Measured on simulated movies: with sn, a 3-frame moving average of a raw movie whose
       events were all found had event precision 0.2; with the robust spread, 1.0.) At the simulated firing rates (0.02-1.3 Hz, decays
       of 0.1-1 s) most such events are single spikes, so their median is one spike's amount;
    3. a candidate is an event when its amount is at least A / 2: half a spike rounds to one.
  A true event and an inferred event match when at most 1 frame apart (each used once; matching
  in time order is optimal on a line). F1 = 2 TP / (2 TP + FP + FN).

A neuron with no true spikes has no spike r or F1 (NaN, left out of the medians); a neuron whose
inferred spikes are all zero gets r = 0 (the convention of `deepcad score`'s trace r).

Baseline movies are not written by `deepcad score`, so their traces are recomputed here from the
raw movie with the same filters (see `baseline_traces`): temporal moving average and separable 3-D
Gaussian, kernels truncated and renormalised at the borders exactly as src/metrics.rs does. Both are
linear, so filtering the movie and then averaging a mask equals averaging the mask of the spatially
filtered movie and then filtering the trace in time; that is how they are computed (cheap enough to
try every width, for a best-for-spikes oracle baseline).

Run `python eval/spikes.py --self-test` (seconds) to check the scoring on synthetic AR(2) traces, or
`python eval/spikes.py MOVIE.tif --labels labels.tif --spikes spikes.csv` to score one movie.
"""

import argparse
import os
import re
import sys
import warnings
from dataclasses import dataclass

# OASIS inverts many tiny matrices: a BLAS thread pool only slows that down (about 5× on 2 busy
# cores). Effective when this module loads numpy first (eval/evaluate.py sets the same).
for _variable in ("OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_variable, "1")

import numpy as np
from scipy.ndimage import correlate1d, gaussian_filter1d

SMOOTHING_SIGMA_FRAMES = 1.0
"""Both spike trains are smoothed by this Gaussian before their correlation (and before events are
located)."""
TOLERANCE_FRAMES = 1
"""An inferred event matches a true one at most this many frames away."""
AMOUNT_REACH_FRAMES = 2
"""An event's amount is the inferred spike amount within this many frames of its peak."""
CLEAR_EVENT_NOISE_SDS = 3.0
"""Events whose own calcium transient has at least this matched-filter SNR (L2 norm / the trace's
robust noise SD) estimate the single-spike amount."""
EVENT_FRACTION_OF_SPIKE = 0.5
"""An inferred event needs at least this fraction of the estimated single-spike amount."""

# The widths `deepcad score --baselines` tries (src/evaluation/baselines.rs MOVING_AVERAGE_WINDOWS
# and GAUSSIAN_SIGMAS): the baselines chosen there are looked up among these by their description.
MOVING_AVERAGE_WINDOWS = (3, 5, 9, 15, 25, 41)
GAUSSIAN_SIGMAS = tuple((t, xy) for t in (1.0, 2.0, 4.0, 8.0) for xy in (0.5, 1.0, 1.5))


# ------------------------------------------------------------------------------ inputs

def read_spikes_csv(path):
    """The true spikes written by `deepcad simulate --spikes`: an int array (frames, neurons),
    column n - 1 for neuron n (label n)."""
    with open(path) as f:
        header = f.readline().strip().split(",")
    if header[0] != "frame" or any(h != f"neuron_{i}" for i, h in enumerate(header[1:], 1)):
        raise ValueError(f"{path}: expected a header frame,neuron_1,...,neuron_N, got {','.join(header[:4])}...")
    table = np.loadtxt(path, delimiter=",", skiprows=1, dtype=np.int64, ndmin=2)
    if not np.array_equal(table[:, 0], np.arange(len(table))):
        raise ValueError(f"{path}: rows must be frames 0, 1, 2, ... in order")
    return table[:, 1:]


def label_masks(labels, neurons):
    """Boolean masks (neurons, H, W) for labels 1..neurons (a neuron hidden by its neighbours has an
    empty mask)."""
    labels = np.asarray(labels)
    return np.stack([labels == n for n in range(1, neurons + 1)])


def mask_traces(movie, masks):
    """Mean of the movie (T, H, W) over each mask, per frame: (neurons, T) float64; NaN rows for
    empty masks."""
    flat = np.asarray(movie, dtype=np.float64).reshape(len(movie), -1)
    traces = np.full((len(masks), len(movie)), np.nan)
    for n, mask in enumerate(masks):
        pixels = mask.ravel()
        if pixels.any():
            traces[n] = flat[:, pixels].mean(axis=1)
    return traces


# ------------------------------------------------------------------------------ baselines

def _renormalised(values, kernel, axis):
    """Correlation with a symmetric kernel truncated at the borders and renormalised by the weights
    that fell inside (no padding values invented), as src/metrics.rs filters."""
    kernel = np.asarray(kernel, dtype=np.float64)
    total = correlate1d(values, kernel, axis=axis, mode="constant", cval=0.0)
    shape = [1] * values.ndim
    shape[axis] = values.shape[axis]
    norm = correlate1d(np.ones(values.shape[axis]), kernel, mode="constant", cval=0.0).reshape(shape)
    return total / norm


def _gaussian_kernel(sigma):
    radius = int(np.ceil(3.0 * sigma))
    offsets = np.arange(-radius, radius + 1, dtype=np.float64)
    return np.exp(-offsets ** 2 / (2.0 * sigma * sigma))


def moving_average_traces(traces, window):
    """Centred moving average in time, as `temporal_moving_average` (window - 1) // 2 frames before
    and window // 2 after, fewer at the ends."""
    before, after = (window - 1) // 2, window // 2
    frames = traces.shape[1]
    cumulative = np.concatenate([np.zeros((len(traces), 1)), np.cumsum(traces, axis=1)], axis=1)
    t = np.arange(frames)
    first, end = np.maximum(t - before, 0), np.minimum(t + after + 1, frames)
    return (cumulative[:, end] - cumulative[:, first]) / (end - first)


def spatial_gaussian(movie, sigma_xy):
    """Each frame filtered by a separable Gaussian (truncated at 3 sigma, renormalised at borders)."""
    kernel = _gaussian_kernel(sigma_xy)
    rows = _renormalised(np.asarray(movie, dtype=np.float64), kernel, axis=2)
    return _renormalised(rows, kernel, axis=1)


def temporal_gaussian_traces(traces, sigma_t):
    return _renormalised(traces, _gaussian_kernel(sigma_t), axis=1)


def parse_baseline(source):
    """('moving_average', window) or ('gaussian_3d', (sigma_t, sigma_xy)) from the description
    `deepcad score` gives its baselines ("9-frame moving average", "3-D Gaussian σt 2 σxy 1")."""
    m = re.fullmatch(r"(\d+)-frame moving average", source.strip())
    if m:
        return "moving_average", int(m.group(1))
    m = re.fullmatch(r"3-D Gaussian σt ([\d.]+) σxy ([\d.]+)", source.strip())
    if m:
        return "gaussian_3d", (float(m.group(1)), float(m.group(2)))
    raise ValueError(f"unknown baseline description {source!r}")


def baseline_traces(raw, masks, kinds):
    """Mask traces of the raw movie filtered by each baseline in `kinds` (a list of parse_baseline
    results): {kind: (neurons, T)}. Each spatial width is applied to the movie once."""
    raw_traces = mask_traces(raw, masks)
    out = {}
    by_sigma_xy = {}
    for family, width in kinds:
        if family == "moving_average":
            out[(family, width)] = moving_average_traces(raw_traces, width)
        else:
            sigma_t, sigma_xy = width
            if sigma_xy not in by_sigma_xy:
                by_sigma_xy[sigma_xy] = mask_traces(spatial_gaussian(raw, sigma_xy), masks)
            out[(family, width)] = temporal_gaussian_traces(by_sigma_xy[sigma_xy], sigma_t)
    return out


def describe_baseline(kind):
    family, width = kind
    if family == "moving_average":
        return f"{width}-frame moving average"
    return f"3-D Gaussian σt {width[0]:g} σxy {width[1]:g}"


def all_baseline_kinds():
    return ([("moving_average", w) for w in MOVING_AVERAGE_WINDOWS] +
            [("gaussian_3d", s) for s in GAUSSIAN_SIGMAS])


# ------------------------------------------------------------------------------ inference

@dataclass
class Inference:
    """OASIS's result for one trace: spikes s, calcium c, baseline b, AR(2) coefficients g and the
    noise level sn it estimated; and the trace's robust noise SD (see `robust_noise_sd`)."""
    s: np.ndarray
    c: np.ndarray
    b: float
    g: tuple
    sn: float
    noise_sd: float


def robust_noise_sd(trace):
    """1.4826 x the median absolute deviation from the median: the SD of Gaussian noise, little
    moved by sparse transients, and what is left of the noise after smoothing (unlike a
    high-frequency estimate)."""
    y = np.asarray(trace, dtype=np.float64)
    return float(1.4826 * np.median(np.abs(y - np.median(y))))


def infer_spikes(trace, known=None):
    """OASIS AR(2), every parameter estimated from the trace (tau_d = tau_r = None); or, with
    `known` = (g, sn), with those AR coefficients and noise level given (eval/spike_bound.py)."""
    from oasis.functions import deconvolve, estimate_parameters
    y = np.asarray(trace, dtype=np.float64)
    # OASIS replaces AR roots outside (0, 1) by random values; a fixed seed keeps scores reproducible.
    np.random.seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if known is None:
            _, sn = estimate_parameters(y, p=2, fudge_factor=0.98)
            np.random.seed(0)
            c, s, b, g, _ = deconvolve(y, tau_d=None, tau_r=None)
        else:
            g, sn = known
            c, s, b, g, _ = deconvolve(y, g=tuple(g), sn=sn, tau_d=None, tau_r=None)
    return Inference(s=np.asarray(s, dtype=np.float64), c=np.asarray(c), b=float(b), g=tuple(g), sn=float(sn),
                     noise_sd=robust_noise_sd(y))


def impulse_response(g, length=2000):
    """The impulse response OASIS convolves its spikes with, by its own formula: with roots d, r of
    z^2 = g1 z + g2, h_k = (d^k - r^k) / (d - r) for k = 1, 2, ... (AR(1): g^k, k = 0, 1, ...). For a
    near-double root that formula loses its scale (h_1 is then no longer 1), so it must be this
    one, not the textbook recursion, to match OASIS's calcium c. Cut where it has decayed to 1e-3
    of its peak."""
    k = np.arange(1, length + 1, dtype=np.float64)
    if len(g) == 1:
        h = np.exp(np.log(g[0]) * (k - 1))
    else:
        root = np.sqrt(max(g[0] * g[0] + 4 * g[1], 0.0))
        d, r = (g[0] + root) / 2, (g[0] - root) / 2
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            h = np.exp(np.log(d) * k) * k if d == r else (np.exp(np.log(d) * k) - np.exp(np.log(r) * k)) / (d - r)
    h = np.nan_to_num(h)
    peak = int(np.argmax(h))
    after = np.flatnonzero(h[peak:] < 1e-3 * h[peak])
    return h[:peak + after[0] + 1] if len(after) else h


def smooth(train):
    return gaussian_filter1d(np.asarray(train, dtype=np.float64), SMOOTHING_SIGMA_FRAMES, mode="constant")


def detect_events(inference):
    """Inferred event frames (see the module's description) and the estimated single-spike amount
    (None when no event stands clearly above the noise: then there are no events)."""
    s = inference.s
    s_hat = smooth(s)
    left = np.concatenate([[-np.inf], s_hat[:-1]])
    right = np.concatenate([s_hat[1:], [-np.inf]])
    # Strictly above the left neighbour and not below the right: one frame per plateau.
    peaks = np.flatnonzero((s_hat > left) & (s_hat >= right) & (s_hat > 0))
    if len(peaks) == 0:
        return np.array([], dtype=np.int64), None
    lo = np.maximum(peaks - AMOUNT_REACH_FRAMES, 0)
    hi = np.minimum(peaks + AMOUNT_REACH_FRAMES + 1, len(s))
    amounts = np.array([s[a:b].sum() for a, b in zip(lo, hi)])
    # The calcium each candidate alone puts into OASIS's fit c: its spikes convolved with the kernel.
    h = impulse_response(inference.g)
    calcium = np.array([np.linalg.norm(np.convolve(s[a:b], h)) for a, b in zip(lo, hi)])
    clear = calcium >= CLEAR_EVENT_NOISE_SDS * inference.noise_sd
    if not clear.any():
        return np.array([], dtype=np.int64), None
    single_spike = float(np.median(amounts[clear]))
    return peaks[amounts >= EVENT_FRACTION_OF_SPIKE * single_spike], single_spike


def match_events(true_frames, inferred_frames, tolerance=TOLERANCE_FRAMES):
    """Matched pairs between two sorted frame lists, each frame used once, at most `tolerance`
    frames apart. Greedy in time order (each inferred event takes the earliest unmatched true
    event in reach) is a maximum matching for windows on a line."""
    matched, j = 0, 0
    for f in inferred_frames:
        while j < len(true_frames) and true_frames[j] < f - tolerance:
            j += 1
        if j < len(true_frames) and abs(true_frames[j] - f) <= tolerance:
            matched += 1
            j += 1
    return matched


def pearson(a, b):
    a, b = a - a.mean(), b - b.mean()
    denominator = np.sqrt((a * a).sum() * (b * b).sum())
    return float((a * b).sum() / denominator) if denominator > 0 else 0.0


def score_trace(trace, true_counts, known=None):
    """Spike r, event F1 (with precision and recall) and what OASIS estimated, for one neuron
    (`known`: see infer_spikes)."""
    true_counts = np.asarray(true_counts, dtype=np.float64)
    if not np.isfinite(trace).all():
        return None
    true_events = np.flatnonzero(true_counts > 0)
    try:
        inference = infer_spikes(trace, known)
    except (ValueError, np.linalg.LinAlgError) as error:
        # OASIS gave up on this trace (e.g. a degenerate AR estimate): a user gets no spikes from it.
        nothing = None if len(true_events) == 0 else 0.0
        return {"true_spikes": int(true_counts.sum()), "inferred_events": 0, "failed": str(error),
                "r": nothing, "f1": nothing, "precision": None, "recall": nothing}
    events, single_spike = detect_events(inference)
    result = {"true_spikes": int(true_counts.sum()), "inferred_events": int(len(events)),
              "g": [float(v) for v in inference.g], "sn": inference.sn, "noise_sd": inference.noise_sd,
              "single_spike_amount": single_spike}
    if len(true_events) == 0:
        result.update(r=None, f1=None, precision=None, recall=None)
        return result
    tp = match_events(true_events, events)
    result["r"] = pearson(smooth(inference.s), smooth(true_counts))
    result["f1"] = 2 * tp / (2 * tp + (len(events) - tp) + (len(true_events) - tp))
    result["precision"] = tp / len(events) if len(events) else None
    result["recall"] = tp / len(true_events)
    return result


def score_traces(traces, spikes, known=None):
    """Scores of every neuron (traces (neurons, T), spikes (T, neurons)) and their medians; `known`:
    one (g, sn) per neuron, or None (see infer_spikes)."""
    if traces.shape[1] != spikes.shape[0] or traces.shape[0] != spikes.shape[1]:
        raise ValueError(f"{traces.shape[0]} traces of {traces.shape[1]} frames against spikes for "
                         f"{spikes.shape[1]} neurons over {spikes.shape[0]} frames")
    neurons = [score_trace(traces[n], spikes[:, n], None if known is None else known[n]) for n in range(len(traces))]

    def median(key):
        values = [n[key] for n in neurons if n is not None and n[key] is not None]
        return float(np.median(values)) if values else None
    return {"r": median("r"), "f1": median("f1"), "precision": median("precision"), "recall": median("recall"),
            "neurons_scored": sum(1 for n in neurons if n is not None and n["r"] is not None),
            "neurons": neurons}


def score_movie(movie, masks, spikes):
    return score_traces(mask_traces(movie, masks), spikes)


# ------------------------------------------------------------------------------ self-test

def synthetic_trace(frames=3000, rate_hz=30.0, tau_r=0.05, tau_d=0.6, firing_hz=0.5, amplitude=1.0,
                    noise=0.0, seed=0):
    """An AR(2) calcium trace with known Poisson spikes (counts per frame) plus white noise of SD
    `noise` (in units of one spike's jump)."""
    rng = np.random.default_rng(seed)
    counts = rng.poisson(firing_hz / rate_hz, frames)
    d, r = np.exp(-1 / (tau_d * rate_hz)), np.exp(-1 / (tau_r * rate_hz))
    g1, g2 = d + r, -d * r
    c = np.zeros(frames)
    for t in range(frames):
        c[t] = amplitude * counts[t] + (g1 * c[t - 1] if t >= 1 else 0) + (g2 * c[t - 2] if t >= 2 else 0)
    return 2.0 + c + noise * rng.standard_normal(frames), counts


def self_test(verbose=True):
    """Checks the scoring on synthetic AR(2) traces: near-perfect without noise, lower with noise,
    no events from noise alone, and the baseline filters against a direct computation. Seconds."""
    failures = []

    def check(condition, message):
        if verbose:
            print(("ok   " if condition else "FAIL ") + message)
        if not condition:
            failures.append(message)

    clean, counts = synthetic_trace()
    s = score_trace(clean, counts)
    check(s["r"] > 0.95 and s["f1"] > 0.95, f"noise-free AR(2) trace: spike r {s['r']:.3f}, F1 {s['f1']:.3f} (> 0.95)")
    previous = s
    for noise in (0.5, 1.0):
        noisy, _ = synthetic_trace(noise=noise)
        n = score_trace(noisy, counts)
        check(n["r"] < previous["r"] and n["f1"] <= previous["f1"],
              f"noise {noise}: spike r {n['r']:.3f}, F1 {n['f1']:.3f}, below the cleaner trace's")
        previous = n
    check(previous["r"] > 0.5 and previous["f1"] > 0.5,
          f"noise as large as one spike still leaves the spikes: r {previous['r']:.3f}, F1 {previous['f1']:.3f} (> 0.5)")

    noisy, _ = synthetic_trace(noise=0.3)
    smoothed = score_trace(moving_average_traces(noisy[None], 3)[0], counts)
    check(smoothed["precision"] > 0.9 and smoothed["f1"] > 0.9,
          f"a 3-frame moving average does not flood the events: precision {smoothed['precision']:.3f}, "
          f"F1 {smoothed['f1']:.3f} (> 0.9)")

    fast, fast_counts = synthetic_trace(tau_r=0.015, tau_d=0.15, firing_hz=0.2, noise=0.05, seed=3)
    f = score_trace(fast, fast_counts)
    check(f["r"] > 0.9 and f["f1"] > 0.9, f"fast indicator, low noise: spike r {f['r']:.3f}, F1 {f['f1']:.3f} (> 0.9)")

    shifted = np.roll(counts, 1)
    check(match_events(np.flatnonzero(counts), np.flatnonzero(shifted)) == np.count_nonzero(counts > 0) - (counts[-1] > 0),
          "events one frame late all match within the tolerance")
    check(match_events(np.array([10]), np.array([12])) == 0, "an event two frames off does not match")

    rng = np.random.default_rng(5)
    noise_only = 2.0 + 0.1 * rng.standard_normal(3000)
    z = score_trace(noise_only, np.zeros(3000))
    check(z["inferred_events"] <= 2 and z["r"] is None,
          f"pure noise: {z['inferred_events']} inferred events (<= 2), no spike r without true spikes")

    # Baseline filters against a direct, loop-based reading of src/metrics.rs.
    movie = rng.standard_normal((23, 9, 7))
    masks = label_masks(rng.integers(0, 3, (9, 7)), 2)
    got = baseline_traces(movie, masks, [("moving_average", 4), ("gaussian_3d", (2.0, 1.0))])
    expected_ma = np.stack([[movie[max(0, t - 1):min(23, t + 3)][:, m].mean() for t in range(23)] for m in masks])
    check(np.allclose(got[("moving_average", 4)], expected_ma), "moving-average traces equal the filtered movie's")
    direct = direct_gaussian_3d(movie, 2.0, 1.0)
    expected_g = np.stack([direct[:, m].mean(axis=1) for m in masks])
    check(np.allclose(got[("gaussian_3d", (2.0, 1.0))], expected_g), "3-D Gaussian traces equal the filtered movie's")
    check(parse_baseline("3-D Gaussian σt 2 σxy 1.5") == ("gaussian_3d", (2.0, 1.5))
          and parse_baseline("25-frame moving average") == ("moving_average", 25), "baseline descriptions parse")
    return failures


def direct_gaussian_3d(movie, sigma_t, sigma_xy):
    """Loop-based separable Gaussian with truncation at ceil(3 sigma) and renormalisation, axis by
    axis (x, y, then t), for the self-test only."""
    out = np.asarray(movie, dtype=np.float64)
    for axis, sigma in ((2, sigma_xy), (1, sigma_xy), (0, sigma_t)):
        radius = int(np.ceil(3 * sigma))
        moved = np.moveaxis(out, axis, -1)
        result = np.empty_like(moved)
        size = moved.shape[-1]
        for i in range(size):
            js = np.arange(max(0, i - radius), min(size - 1, i + radius) + 1)
            w = np.exp(-((js - i) ** 2) / (2 * sigma * sigma))
            result[..., i] = (moved[..., js] * w).sum(axis=-1) / w.sum()
        out = np.moveaxis(result, -1, axis)
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("movie", nargs="?", help="a movie (TIFF) to score")
    parser.add_argument("--labels", help="label image (deepcad simulate --labels)")
    parser.add_argument("--spikes", help="true spikes CSV (deepcad simulate --spikes)")
    parser.add_argument("--centre-roi", action="store_true",
                        help="score each neuron's 3×3-pixel ROI at its centroid instead of its whole mask "
                             "(eval/spike_bound.py)")
    parser.add_argument("--self-test", action="store_true", help="check the scoring on synthetic traces")
    a = parser.parse_args()
    if a.self_test:
        failures = self_test()
        print(f"spikes self-test: {'passed' if not failures else f'{len(failures)} failed'}")
        sys.exit(1 if failures else 0)
    if not (a.movie and a.labels and a.spikes):
        parser.error("give a movie with --labels and --spikes, or --self-test")
    import tifffile
    spikes = read_spikes_csv(a.spikes)
    masks = label_masks(tifffile.imread(a.labels), spikes.shape[1])
    if a.centre_roi:
        import spike_bound
        masks = spike_bound.centre_rois(masks)
    result = score_movie(tifffile.imread(a.movie), masks, spikes)
    print(f"{a.movie}: median spike r {result['r']:.3f}, event F1 {result['f1']:.3f} "
          f"(precision {result['precision']:.3f}, recall {result['recall']:.3f}) over {result['neurons_scored']} neurons")


if __name__ == "__main__":
    main()
