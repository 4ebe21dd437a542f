"""Spike inference in the evaluation harness: which movies, which outputs, which numbers.

eval/spikes.py scores one movie (OASIS AR(2) on each neuron's mask trace against the true spikes);
this module applies it to everything the harness scores at one level and writes the spike tables:

* every output (ours, ours in the input's type, the PyTorch reference and its uint16 cast) and the raw
  movie, read from their files;
* every baseline `deepcad score --baselines` chose (best width for SNR and for traces), recomputed
  from the raw movie from the description it reports (`deepcad score` does not write them);
* the same two filter families at every width `deepcad score` tries, keeping the best by spike r and
  the best by event F1: oracle baselines for spikes, flattering them as the harness does for SNR;
* the clean movie (truth.tif) as the ceiling: what spike inference reaches without any noise.

The spike suite (`evaluate.py --spikes-suite`) is the set of movies where interlaced self-supervision
is weakest: a fast indicator at 7.5, 15, 30 and 60 Hz, sparse single spikes, and one-photon-like data
with strong background and neuropil, each at two photon levels.
"""

import math
import time

import numpy as np
import tifffile

import spike_bound
import spikes as sp

SPIKE_SUITE = (
    {"name": "fast-7.5hz", "label": "fast indicator, 7.5 Hz", "flags": ["--indicator", "fast", "--frame-rate", "7.5"]},
    {"name": "fast-15hz", "label": "fast indicator, 15 Hz", "flags": ["--indicator", "fast", "--frame-rate", "15"]},
    {"name": "fast-30hz", "label": "fast indicator, 30 Hz", "flags": ["--indicator", "fast", "--frame-rate", "30"]},
    {"name": "fast-60hz", "label": "fast indicator, 60 Hz", "flags": ["--indicator", "fast", "--frame-rate", "60"]},
    {"name": "single-spike", "label": "GCaMP6s, sparse single spikes (0.1 Hz), 30 Hz",
     "flags": ["--firing-rate", "0.1"]},
    {"name": "one-photon", "label": "one-photon-like (background ×8, neuropil ×5), GCaMP6s, 30 Hz",
     "flags": ["--one-photon"]},
)
"""Each movie of the suite: a name (folder and report), words for the report, and the
`deepcad simulate` flags that make it (on top of the harness's size, neurons, photons and seed)."""

SUITE_PHOTONS = "5,1"
"""The suite's default photon levels: a typical recording and one 5× dimmer (the issue's two)."""

OUTPUTS = ("raw", "ours", "ours_input_type", "reference", "reference_uint16")


def outputs(record):
    """OUTPUTS plus the level's extra outputs: ours trained with other methods (evaluate.py --methods)."""
    return (*OUTPUTS, *record.get("extra_outputs", []))


def output_label(labels, name):
    """Words for an output: `labels`, else ours with another method ('ours_hybrid'), or either with
    its events restored ('ours_restored', evaluate.py --restore-events)."""
    if name.endswith("_restored"):
        return output_label(labels, name[:-len("_restored")]) + ", events restored"
    if name in labels:
        return labels[name]
    return f"DeepCAD Rust, --method {name[len('ours_'):]}" if name.startswith("ours_") else name


SCORED_BASELINES = ("moving_average", "gaussian_3d", "moving_average_for_traces", "gaussian_3d_for_traces")
FAMILIES = ("moving_average", "gaussian_3d")


def _summary(result, source, per_neuron=True):
    """The medians (and, for named entries, each neuron's r and F1) of one scored movie."""
    entry = {k: result[k] for k in ("r", "f1", "precision", "recall", "neurons_scored")}
    entry["source"] = source
    if per_neuron:
        entry["per_neuron"] = [None if n is None else {"r": n["r"], "f1": n["f1"], "true_spikes": n["true_spikes"],
                                                       "inferred_events": n["inferred_events"]}
                               for n in result["neurons"]]
    return entry


def spike_scores(record):
    """Spike r and event F1 of everything scored at one level (see the module's description):
    {name: {"r", "f1", "precision", "recall", "neurons_scored", "source", ...}}."""
    started = time.perf_counter()
    paths = record["paths"]
    truth_spikes = sp.read_spikes_csv(paths["spikes"])
    masks = sp.label_masks(tifffile.imread(paths["labels"]), truth_spikes.shape[1])
    raw, truth = tifffile.imread(paths["raw"]), tifffile.imread(paths["truth"])
    rois = spike_bound.centre_rois(masks)
    scores = {}
    scores["clean"] = _summary(sp.score_movie(truth, masks, truth_spikes), "the clean movie (truth.tif): the ceiling")
    roi = {"clean": spike_bound.roi_score(truth, rois, truth_spikes, "clean movie")}
    for name in outputs(record):
        if name in paths:
            movie = raw if name == "raw" else tifffile.imread(paths[name])
            scores[name] = _summary(sp.score_movie(movie, masks, truth_spikes), paths[name])
            roi[name] = spike_bound.roi_score(movie, rois, truth_spikes, paths[name])

    # Every width of both families (the chosen ones are among them), each trace set scored once.
    chosen = {}
    for e in record["scores"]["entries"]:
        if e["name"] in SCORED_BASELINES:
            chosen[e["name"]] = sp.parse_baseline(e["source"])
    kinds = sp.all_baseline_kinds() + [k for k in chosen.values() if k not in sp.all_baseline_kinds()]
    traces = sp.baseline_traces(raw, masks, kinds)
    results = {kind: sp.score_traces(traces[kind], truth_spikes) for kind in kinds}
    for name, kind in chosen.items():
        scores[name] = _summary(results[kind], sp.describe_baseline(kind))
    for family in FAMILIES:
        mine = [k for k in kinds if k[0] == family]
        for metric in ("r", "f1"):
            best = max(mine, key=lambda k: -math.inf if results[k][metric] is None else results[k][metric])
            scores[f"{family}_for_spike_{metric}"] = _summary(results[best], sp.describe_baseline(best))
    scores["_bound"] = spike_bound.bound_scores(raw, truth, masks, truth_spikes, roi)
    scores["_all_baselines"] = [{"source": sp.describe_baseline(k), "r": results[k]["r"], "f1": results[k]["f1"]}
                                for k in kinds]
    scores["_seconds"] = time.perf_counter() - started
    return scores


BASELINE_ENTRIES = SCORED_BASELINES + tuple(f"{f}_for_spike_{m}" for f in FAMILIES for m in ("r", "f1"))


def spike_metrics(record):
    """Headline spike numbers of one level: spike r and F1 of raw, ours, the reference, the best
    oracle baseline (best among every baseline entry, for that metric) and the clean ceiling."""
    s = record.get("spikes") or {}
    m = {}
    for metric, key in (("spike_r", "r"), ("spike_f1", "f1")):
        values = {name: s[name][key] if name in s else None for name in (*outputs(record), "clean")}
        present = [n for n in BASELINE_ENTRIES if n in s and s[n][key] is not None]
        best = max(present, key=lambda n: s[n][key]) if present else None
        values["best_baseline"] = s[best][key] if best else None
        m[metric] = values
        m[f"best_baseline_{metric}_source"] = s[best]["source"] if best else None
    m.update(spike_bound.bound_metrics(s, outputs(record)))
    return m


LABELS = {
    "clean": "clean movie (ceiling)",
    "moving_average_for_spike_r": "moving average (best width for spike r)",
    "moving_average_for_spike_f1": "moving average (best width for spike F1)",
    "gaussian_3d_for_spike_r": "3-D Gaussian (best σ for spike r)",
    "gaussian_3d_for_spike_f1": "3-D Gaussian (best σ for spike F1)",
}


def fmt(v, digits=3):
    return "—" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.{digits}f}"


def method_lines():
    """How spikes were inferred and scored, in the report's words."""
    return [
        "Spike inference as a user would run it: each neuron's trace is the mean of the movie over its label "
        "mask, per frame; OASIS (`oasis-deconv` 0.3.2) deconvolves it with an AR(2) model whose coefficients, noise "
        "level and baseline are all estimated from that trace (L1 penalty under the noise constraint). "
        "**Spike r**: Pearson r between the inferred and the true spike trains, both smoothed by a Gaussian of "
        "σ = 1 frame. **Event F1** (±1 frame): inferred events are the local maxima of the smoothed inferred train "
        "whose inferred amount within ±2 frames is at least half the single-spike amount, itself estimated from "
        "the trace as the median amount of the events standing clearly out of the noise (matched-filter SNR ≥ 3 "
        "against the trace's robust noise SD, 1.4826 × its median absolute deviation); true events are frames "
        "with a spike. Medians over neurons; every frame is scored (the last 20 % were never trained on). "
        "Baselines are scored at their widths chosen for SNR and for traces, and at every width for the best "
        "spike r and F1 (oracle choices); the clean movie gives the ceiling. See eval/spikes.py."]


def headline_lines(summary, with_reference):
    """The spike table under the main report's headline: per photon level, ours's SNR and trace r
    beside spike r and F1 of raw, ours, the reference, the best baseline and the ceiling."""
    if not any(l.get("spike_r") for l in summary):
        return []
    lines = ["### Spike inference", ""] + method_lines() + ["",
             "| photons | ours SNR | ours trace r | spike r: raw | ours | reference | best baseline | clean | "
             "F1: raw | ours | reference | best baseline | clean |", "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for l in summary:
        r, f = l.get("spike_r", {}), l.get("spike_f1", {})

        def mean(stats, name, digits=3):
            return fmt(stats[name]["mean"], digits) if name in stats else "—"
        lines.append(f"| {l['photons']:g} | {mean(l['snr'], 'ours', 2)} | {mean(l['trace'], 'ours')} | "
                     f"{mean(r, 'raw')} | **{mean(r, 'ours')}** | {mean(r, 'reference') if with_reference else '—'} | "
                     f"{mean(r, 'best_baseline')} | {mean(r, 'clean')} | {mean(f, 'raw')} | **{mean(f, 'ours')}** | "
                     f"{mean(f, 'reference') if with_reference else '—'} | {mean(f, 'best_baseline')} | "
                     f"{mean(f, 'clean')} |")
    lines.append("")
    return lines


def entry_columns(record, name):
    """' spike r | F1 |' cells for one row of a level's detail table."""
    s = (record.get("spikes") or {}).get(name)
    return f" {fmt(s['r'])} | {fmt(s['f1'])} |" if s else " — | — |"


def extra_rows(record):
    """Detail-table rows for what `deepcad score` did not score: the spike-oracle baselines and the
    clean ceiling (SNR and trace columns left empty)."""
    s = record.get("spikes") or {}
    rows = []
    for name in (*(f"{f}_for_spike_{m}" for f in FAMILIES for m in ("r", "f1")), "clean"):
        if name in s:
            label = LABELS[name] + ("" if name == "clean" else f" — {s[name]['source']}")
            rows.append(f"| {label} | | | | | | |{entry_columns(record, name)}")
    return rows


def suite_report_lines(results, labels=None):
    """The spike suite's report: one row per movie and photon level (mean over seeds). `labels`:
    words for the outputs' names (evaluate.py's), beside this module's own."""
    labels = {**(labels or {}), **LABELS}
    runs, c = results["levels"], results["config"]
    with_reference = not c["skip_reference"]
    lines = ["# DeepCAD spike-inference suite", "",
             f"Generated {results['date']} by `{results['command']}` in {results['minutes']:.1f} min on "
             f"{results['machine']} ({results['threads']} threads, {c['device']}). {results['deepcad_version']}.", "",
             "Movies where interlaced self-supervision is weakest: `deepcad simulate` with a fast indicator "
             "(`--indicator fast`: rise 10–20 ms, decay 100–200 ms) at 7.5, 15, 30 and 60 Hz, sparse single spikes "
             "(`--firing-rate 0.1`, GCaMP6s), and one-photon-like data (`--one-photon`: background ×8, neuropil ×5); "
             f"{c['width']}×{c['width']} px, {c['frames']} frames, {c['neurons']} neurons, photon levels "
             f"{', '.join(f'{v:g}' for v in results['settings']['photons'])}, seeds "
             f"{', '.join(map(str, results['settings']['seeds']))}. " + results["settings"]["training_words"], ""]
    lines += method_lines() + [""]
    seeds = results["settings"]["seeds"]
    lines += [f"Mean over {len(seeds)} seed(s). Columns: SNR (dB) and median trace r of raw / ours; then spike r "
              "and event F1 of raw, ours, the reference, the best oracle baseline and the clean movie.", "",
              "| movie | photons | SNR raw / ours | trace r raw / ours | spike r: raw | ours | reference | best baseline "
              "| clean | F1: raw | ours | reference | best baseline | clean |",
              "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]

    def mean(values):
        values = [v for v in values if v is not None]
        return float(np.mean(values)) if values else None
    for scenario in SPIKE_SUITE:
        for photons in results["settings"]["photons"]:
            group = [r for r in runs if r["scenario"] == scenario["name"] and r["photons"] == photons]
            if not group:
                continue

            def m(metric, name, digits=3):
                return fmt(mean([r["metrics"][metric].get(name) for r in group]), digits)
            ref_r = m("spike_r", "reference") if with_reference else "—"
            ref_f = m("spike_f1", "reference") if with_reference else "—"
            lines.append(f"| {scenario['label']} | {photons:g} | {m('snr', 'raw', 2)} / {m('snr', 'ours', 2)} | "
                         f"{m('trace', 'raw')} / {m('trace', 'ours')} | {m('spike_r', 'raw')} | "
                         f"**{m('spike_r', 'ours')}** | {ref_r} | {m('spike_r', 'best_baseline')} | "
                         f"{m('spike_r', 'clean')} | {m('spike_f1', 'raw')} | **{m('spike_f1', 'ours')}** | {ref_f} | "
                         f"{m('spike_f1', 'best_baseline')} | {m('spike_f1', 'clean')} |")
    lines += spike_bound.bound_lines(
        [(sc["label"], p, [r for r in runs if r["scenario"] == sc["name"] and r["photons"] == p])
         for sc in SPIKE_SUITE for p in results["settings"]["photons"]], fmt, mean)
    lines += method_comparison_lines(results, mean)
    lines += ["", "![Spike r per movie](spikes.png)", "", "## Per movie", ""]
    for r in runs:
        lines += [f"### {r['scenario_label']}, {r['photons']:g} photons, seed {r['seed']}", "",
                  "| output | SNR dB | trace r (median) | spike r | F1 | precision | recall |", "|---|---|---|---|---|---|---|"]
        s = r["spikes"]
        by_name = {e["name"]: e for e in r["scores"]["entries"]}
        for name in (*outputs(r), *BASELINE_ENTRIES, "clean"):
            if name not in s:
                continue
            sc = by_name.get(name, {}).get("scores") or {}
            label = output_label(labels, name) + (f" — {s[name]['source']}" if name in BASELINE_ENTRIES else "")
            lines.append(f"| {label} | {fmt(sc.get('snr_db'), 2)} | {fmt(sc.get('trace_correlation_median'))} | "
                         f"{fmt(s[name]['r'])} | {fmt(s[name]['f1'])} | {fmt(s[name]['precision'])} | "
                         f"{fmt(s[name]['recall'])} |")
        lines.append("")
    return lines


def method_comparison_lines(results, mean):
    """With evaluate.py --methods: ours per training method side by side, per movie and photon level
    (mean over seeds), on the same movies; nothing otherwise."""
    runs = results["levels"]
    extras = list(dict.fromkeys(n for r in runs for n in r.get("extra_outputs", [])))
    if not extras:
        return []
    names = ("ours", *extras)
    methods = {n: runs[0].get(f"{n}_train", {}).get("method") for n in names}
    lines = ["", "### Training methods", "",
             "Ours on the same movies (each trained model with the same settings): "
             + ", ".join(f"'{n}' = " + extra_words(runs[0], n, methods) for n in names) + ". Raw, the best oracle "
             "baseline (best per column) and the clean movie for reference.", "",
             "| movie | photons | output | SNR dB | trace r | spike r | F1 |", "|---|---|---|---|---|---|---|"]
    for scenario in SPIKE_SUITE:
        for photons in results["settings"]["photons"]:
            group = [r for r in runs if r["scenario"] == scenario["name"] and r["photons"] == photons]
            if not group:
                continue
            for name in ("raw", *names, "best_baseline", "clean"):
                def m(metric, digits=3):
                    return fmt(mean([r["metrics"][metric].get(name) for r in group]), digits)
                snr = "" if name == "clean" else m("snr", 2)
                trace = "" if name == "clean" else m("trace")
                lines.append(f"| {scenario['label']} | {photons:g} | {name} | {snr} | {trace} | {m('spike_r')} | "
                             f"{m('spike_f1')} |")
    return lines


def extra_words(record, name, methods):
    """How one of ours in the methods table was made, in a few words."""
    if name == "builtin":
        return "the built-in model, not trained on the movie (`-m default`)"
    if name.endswith("_restored"):
        how = ("`deepcad denoise --restore-events`" if record.get(f"{name}_denoise", {}).get("engine")
               else "eval/event_restoration.py")
        return f"'{name[:-len('_restored')]}' with its events always restored ({how})"
    if name == "ours" and not methods.get(name):
        return ("our defaults (`deepcad train`, then `deepcad denoise`, which restores fast events by itself "
                "where the movie's events decay within 14 frames: the fast indicator here, not GCaMP6s at 30 Hz)")
    return f"`--method {methods.get(name) or 'default'}`"


def suite_plot(results, out):
    """Grouped bars: spike r of raw, ours, the reference, the best baseline and the ceiling, per
    movie and photon level (first seed's mean over seeds)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    groups, names = [], ("raw", "ours", "reference", "best_baseline", "clean")
    colours = {"raw": "0.6", "ours": "r", "reference": "b", "best_baseline": "g", "clean": "k"}
    for scenario in SPIKE_SUITE:
        for photons in results["settings"]["photons"]:
            group = [r for r in results["levels"] if r["scenario"] == scenario["name"] and r["photons"] == photons]
            if group:
                values = {n: [r["metrics"]["spike_r"].get(n) for r in group] for n in names}
                groups.append((f"{scenario['name']}\n{photons:g} ph", {n: np.mean(v) if None not in v else np.nan
                                                                        for n, v in values.items()}))
    fig, ax = plt.subplots(figsize=(max(6, 1.1 * len(groups)), 3.8))
    width = 0.8 / len(names)
    for i, name in enumerate(names):
        ax.bar(np.arange(len(groups)) + (i - len(names) / 2 + 0.5) * width, [g[1][name] for g in groups], width,
               color=colours[name], label=LABELS.get(name, name).replace("_", " "))
    ax.set_xticks(np.arange(len(groups)), [g[0] for g in groups], fontsize=7)
    ax.set_ylabel("median spike r (OASIS AR(2))")
    ax.legend(fontsize=7, ncol=5)
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    fig.savefig(out / "spikes.png", dpi=100)
    plt.close(fig)
