"""Delay against quality for live denoising (issue 28): how much a shorter look-ahead costs.

For each photon level it simulates one movie with truth, neuron labels and true spikes
(`deepcad simulate`), then denoises it with `deepcad denoise --follow` at several look-aheads (the
finished file with its end marker: the live stream reads frames as fast as they come, so only the
look-ahead changes the numbers, not the machine's speed), and scores every output: SNR (after the
gain/offset fit) and the median neuron-trace r from `deepcad score`, spike r from eval/spikes.py
(OASIS on each neuron's trace), the raw movie and the whole-movie output as the two ends. The delay
is stated in frames (a frame waits for at most step - 1 + look-ahead later frames) and in seconds
at the simulated frame rate.

Usage (the eval Python environment of scripts/evaluate.sh, a release build of deepcad):
  python eval/live_delay.py --out /tmp/live-delay [--photons 5,1] [--look-aheads 0,4,13,26,52]
                            [--frames 240] [--side 64] [--step 8] [--model default] [--hz 30]
Writes <out>/live_delay.md (a table) and live_delay.json.
"""

import argparse
import json
import pathlib
import subprocess
import sys

import tifffile

sys.path.insert(0, str(pathlib.Path(__file__).parent))
import spikes as sp  # noqa: E402

ROOT = pathlib.Path(__file__).resolve().parent.parent


def run(args):
    result = subprocess.run([str(a) for a in args], capture_output=True, text=True)
    if result.returncode != 0:
        raise SystemExit(f"{' '.join(map(str, args))} failed:\n{result.stdout}\n{result.stderr}")
    return result.stdout


def find(entry, key):
    """`key` in a score entry, at its top level or one level down."""
    if key in entry:
        return entry[key]
    for value in entry.values():
        if isinstance(value, dict) and key in value:
            return value[key]
    return None


def scores(deepcad, level, outputs):
    """{name: {"snr_db", "trace_r", "spike_r"}} for the raw movie and each output."""
    json_path = level / "scores.json"
    named = [f"{name}={path}" for name, path in outputs.items()]
    run([deepcad, "score", "--raw", level / "raw.tif", "--truth", level / "truth.tif", "--labels",
         level / "labels.tif", "--json", json_path, "--overwrite", "--quiet", *named])
    entries = {e["name"]: e for e in json.loads(json_path.read_text())["entries"]}
    truth_spikes = sp.read_spikes_csv(level / "spikes.csv")
    masks = sp.label_masks(tifffile.imread(level / "labels.tif"), truth_spikes.shape[1])
    table = {}
    for name, path in {"raw": level / "raw.tif", **outputs}.items():
        entry = entries.get(name, {})
        spike = sp.score_movie(tifffile.imread(path), masks, truth_spikes)
        table[name] = {"snr_db": find(entry, "invariant_snr_db"), "trace_r": find(entry, "trace_correlation_median"),
                       "spike_r": spike["r"]}
    return table


def level_results(cfg, deepcad, photons):
    level = cfg.out / f"photons-{photons:g}"
    level.mkdir(parents=True, exist_ok=True)
    raw = level / "raw.tif"
    if not raw.exists():
        run([deepcad, "simulate", "-o", raw, "--truth", level / "truth.tif", "--labels", level / "labels.tif",
             "--spikes", level / "spikes.csv", "--width", cfg.side, "--height", cfg.side, "--frames", cfg.frames,
             "--photons", photons, "--seed", 28, "--quiet"])
    (level / "raw.tif.done").write_text("")  # the finished file: the follow reads it all at once
    outputs = {}
    whole = level / "whole.tif"
    if not whole.exists():
        run([deepcad, "denoise", raw, "-m", cfg.model, "-o", whole, "--output-type", "float32", "--quiet"])
    outputs["whole"] = whole
    for a in cfg.look_aheads:
        out = level / f"live-{a}.tif"
        if not out.exists():
            run([deepcad, "denoise", "--follow", raw, "-m", cfg.model, "-o", out, "--look-ahead", a,
                 "--live-step", cfg.step, "--behind", "queue", "--max-behind", 10 ** 6, "--follow-idle", "2s",
                 "--output-type", "float32", "--quiet"])
        outputs[f"live-{a}"] = out
    return scores(deepcad, level, outputs)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=pathlib.Path, required=True)
    parser.add_argument("--photons", default="5,1")
    parser.add_argument("--look-aheads", default="0,4,13,26,52")
    parser.add_argument("--frames", type=int, default=240)
    parser.add_argument("--side", type=int, default=64)
    parser.add_argument("--step", type=int, default=8)
    parser.add_argument("--hz", type=float, default=30.0, help="frame rate for delays in seconds")
    parser.add_argument("--model", default="default")
    parser.add_argument("--deepcad", default=str(ROOT / "target" / "release" / "deepcad"))
    cfg = parser.parse_args()
    cfg.look_aheads = [int(a) for a in cfg.look_aheads.split(",")]
    cfg.out.mkdir(parents=True, exist_ok=True)
    results = {}
    for photons in [float(p) for p in cfg.photons.split(",")]:
        results[f"{photons:g}"] = level_results(cfg, cfg.deepcad, photons)
        print(f"photons {photons:g} done", file=sys.stderr)
    (cfg.out / "live_delay.json").write_text(json.dumps(results, indent=1))
    lines = [f"Live look-ahead against quality: {cfg.side}x{cfg.side}, {cfg.frames} frames, step {cfg.step}, "
             f"model {cfg.model}; delay = step - 1 + look-ahead frames (at {cfg.hz:g} Hz in seconds)", "",
             "| photons | output | look-ahead | max delay (frames / s) | SNR dB | trace r | spike r |",
             "|---|---|---|---|---|---|---|"]

    def f(v, d=3):
        return "-" if v is None else f"{v:.{d}f}"

    for photons, table in results.items():
        for name, s in table.items():
            if name.startswith("live-"):
                a = int(name.split("-")[1])
                delay = cfg.step - 1 + a
                ahead, delay_text = str(a), f"{delay} / {delay / cfg.hz:.2f}"
            else:
                ahead, delay_text = ("-", "0") if name == "raw" else ("whole movie", "whole movie")
            lines.append(f"| {photons} | {name} | {ahead} | {delay_text} | {f(s['snr_db'], 2)} | {f(s['trace_r'])} "
                         f"| {f(s['spike_r'])} |")
    (cfg.out / "live_delay.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
