"""How far any denoiser can move spike inference on neuron masks, and where it can move it more.

Two references beside the raw movie and the clean ceiling (eval/spikes.py scores all of them):

* **Oracle inference on the raw movie** (`oracle_known`): OASIS on each raw mask trace with the AR(2)
  coefficients it fits on the clean trace and the noise SD of raw − clean, instead of estimating both
  from the noisy trace. A denoised movie's mask trace is a function of the raw movie; the mask already
  averages the neuron's pixels in space (a footprint-weighted average gains almost nothing more), and
  OASIS already applies the calcium kinetics in time. What the raw trace still hides is mostly what
  no processing can recover; what OASIS mis-estimates from it is what a denoiser may win back. So
  this number, not the clean movie, is the realistic bar for whole-mask spike r.
* **Small ROIs** (`centre_rois`): the 3×3 pixels at each neuron's centroid, inside its mask: a
  dendrite, a bouton, a small cell, or an ROI drawn on the denoised picture. There the raw trace
  averages 9 pixels, not a whole soma, and a denoiser that keeps events has much to give.
"""

import warnings

import numpy as np

import spikes as sp

ROI_RADIUS = 1
"""Half the side of the small ROI: 1 gives 3×3 pixels."""


def centre_rois(masks, radius=ROI_RADIUS):
    """Per neuron, the pixels of its mask within `radius` of its centroid (an empty mask stays empty)."""
    rois = np.zeros_like(masks)
    for n, mask in enumerate(masks):
        if not mask.any():
            continue
        ys, xs = np.nonzero(mask)
        cy, cx = int(round(ys.mean())), int(round(xs.mean()))
        window = (slice(max(cy - radius, 0), cy + radius + 1), slice(max(cx - radius, 0), cx + radius + 1))
        rois[n][window] = mask[window]
    return rois


def oracle_known(raw_traces, clean_traces):
    """Per neuron, (g, sn): the AR(2) coefficients OASIS fits on the clean trace and the SD of
    raw − clean; None where a trace is missing or OASIS cannot fit it."""
    from oasis.functions import deconvolve
    known = []
    for raw, clean in zip(raw_traces, clean_traces):
        if not (np.isfinite(raw).all() and np.isfinite(clean).all()):
            known.append(None)
            continue
        np.random.seed(0)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                g = deconvolve(clean, tau_d=None, tau_r=None)[3]
            except (ValueError, np.linalg.LinAlgError):
                known.append(None)
                continue
        known.append((tuple(g), float(np.std(raw - clean))))
    return known


def oracle_scores(raw, truth, masks, spikes):
    """eval/spikes.py's scores of the raw movie's mask traces under oracle inference."""
    raw_traces, clean_traces = sp.mask_traces(raw, masks), sp.mask_traces(truth, masks)
    known = oracle_known(raw_traces, clean_traces)
    # A neuron OASIS cannot fit on the clean trace falls back to estimating from the raw trace.
    return sp.score_traces(raw_traces, spikes, known)


def _short(result, source):
    return {"r": result["r"], "f1": result["f1"], "source": source}


def bound_scores(raw, truth, masks, spikes, roi):
    """The bound and the small-ROI scores of one level: {"raw_oracle_inference": {r, f1, source},
    "roi": `roi` (each scored movie's {r, f1, source} on `centre_rois(masks)`, which the caller
    scores while it holds the movie) plus the best baseline of either filter family for small-ROI
    spike r}."""
    out = {"raw_oracle_inference": _short(oracle_scores(raw, truth, masks, spikes),
                                          "raw movie, OASIS given the clean trace's kinetics and the true noise SD")}
    kinds = sp.all_baseline_kinds()
    traces = sp.baseline_traces(raw, centre_rois(masks), kinds)
    results = {kind: sp.score_traces(traces[kind], spikes) for kind in kinds}
    best = max(kinds, key=lambda k: -np.inf if results[k]["r"] is None else results[k]["r"])
    best_entry = _short(results[best], sp.describe_baseline(best) + " (best width for 3×3 spike r)")
    out["roi"] = {**roi, "best_baseline": best_entry}
    return out


def roi_score(movie, rois, spikes, source):
    """One movie's spike r and F1 on the small ROIs, as bound_scores keeps them."""
    return _short(sp.score_movie(movie, rois, spikes), source)


def bound_metrics(scores, names):
    """spike_metrics' additions: the oracle-inference row for whole masks and the 3×3 ROI spike r."""
    bound = scores.get("_bound")
    if not bound:
        return {}
    return {"oracle_spike_r": bound["raw_oracle_inference"]["r"],
            "roi_spike_r": {n: bound["roi"][n]["r"] if n in bound["roi"] else None
                            for n in (*names, "best_baseline", "clean")}}


def bound_lines(groups, fmt, mean):
    """The suite report's table of the bound and the small ROIs: `groups` is [(movie words,
    photons, [level records])]."""
    lines = ["", "### What whole masks allow, and small ROIs", "",
             "A denoised movie's mask trace is a function of the raw movie; on whole masks the raw trace is "
             "already a spatial average and OASIS already applies the kinetics, so the realistic bar there is "
             "**oracle inference on the raw movie** (OASIS given the clean trace's AR(2) coefficients and the true "
             "noise SD), not the clean movie. On a **3×3-pixel ROI** at each neuron's centroid (a dendrite, a "
             "bouton, a small cell, an ROI drawn on the denoised picture) the raw trace averages 9 pixels and a "
             "denoiser can give much more. See eval/spike_bound.py.", "",
             "| movie | photons | mask spike r: raw | oracle inference on raw | ours | clean | "
             "3×3 ROI spike r: raw | ours | best baseline | clean |", "|---|---|---|---|---|---|---|---|---|---|"]
    for words, photons, group in groups:
        if not any(r["metrics"].get("roi_spike_r") for r in group):
            continue

        def m(metric, name):
            return fmt(mean([(r["metrics"].get(metric) or {}).get(name) for r in group]))
        oracle = fmt(mean([r["metrics"].get("oracle_spike_r") for r in group]))
        lines.append(f"| {words} | {photons:g} | {m('spike_r', 'raw')} | {oracle} | **{m('spike_r', 'ours')}** | "
                     f"{m('spike_r', 'clean')} | {m('roi_spike_r', 'raw')} | **{m('roi_spike_r', 'ours')}** | "
                     f"{m('roi_spike_r', 'best_baseline')} | {m('roi_spike_r', 'clean')} |")
    return lines
