"""How much more restoration buys on the spike suite's fast movies: the Wiener threshold k and the
Gaussian's width sigma of eval/event_restoration.py (the engine ships k = 1, sigma = 3), applied to the
unrestored output of each movie's 60-s model, against the raw movie's whole-mask spike r.

Needs a finished spike suite's work folder (scripts/evaluate.sh --spikes-suite, /tmp/deepcad-evaluation)
and the release binary. SNR is printed as 10 log10(sum truth^2 / sum error^2): compare differences only
(they equal `deepcad score`'s SNR differences, which share the error term).

    python eval/restoration_sweep.py
"""
import sys, subprocess, numpy as np, tifffile
sys.path.insert(0, '/work/main/eval')
import spikes, event_restoration as er
D = '/work/main/target/release/deepcad'
for name in ['fast-7.5hz', 'fast-15hz', 'fast-30hz', 'fast-60hz']:
    for p in (1, 5):
        d = f'/tmp/deepcad-evaluation/{name}-photons-{p}-seed-1'
        out = f'{d}/ours_off.tif'
        subprocess.run([D, 'denoise', f'{d}/raw.tif', '-m', f'{d}/ours.safetensors', '-o', out, '--output-type', 'float32',
                        '--restore-events', 'off', '--overwrite', '-q', '--threads', '2'], check=True)
        raw = tifffile.imread(f'{d}/raw.tif').astype(np.float32); o = tifffile.imread(out).astype(np.float32)
        truth = tifffile.imread(f'{d}/truth.tif').astype(np.float64)
        sp = spikes.read_spikes_csv(f'{d}/spikes.csv'); masks = spikes.label_masks(tifffile.imread(f'{d}/labels.tif'), sp.shape[1])
        def snr(x):
            x = x.astype(np.float64); return 10*np.log10((truth**2).sum() / ((x - truth)**2).sum())
        row = [f"{name} p{p}: raw {spikes.score_movie(raw, masks, sp)['r']:.3f} off {spikes.score_movie(o, masks, sp)['r']:.3f}/{snr(o):.2f}"]
        for k, s in ((1, 3), (0.5, 3), (1, 2), (0.5, 2), (0.25, 2)):
            r = er.restore_events(raw, o, k=k, sigma=s)
            row.append(f"k{k} s{s} {spikes.score_movie(r, masks, sp)['r']:.3f}/{snr(r):.2f}")
        print(" | ".join(row), flush=True)
