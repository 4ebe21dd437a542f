"""Tests of eval/spike_bound.py, in seconds: `pytest eval/test_spike_bound.py` in the evaluation
environment."""

import numpy as np

import spike_bound
import spikes


def test_centre_rois_keep_the_mask_pixels_around_each_centroid():
    labels = np.zeros((12, 12), dtype=np.uint16)
    labels[2:7, 2:7] = 1          # a 5×5 neuron centred on (4, 4)
    labels[9:11, 9:12] = 2        # a 2×3 one at the edge
    rois = spike_bound.centre_rois(spikes.label_masks(labels, 3))
    assert rois[0].sum() == 9 and rois[0][3:6, 3:6].all()
    assert rois[1].sum() == 6 and not (rois[1] & (labels != 2)).any()  # never outside its own mask
    assert rois[2].sum() == 0     # no pixels, no ROI


def test_oracle_inference_is_given_the_clean_kinetics_and_the_true_noise():
    clean, counts = spikes.synthetic_trace(frames=1500, noise=0.0)
    noise = 0.3 * np.random.default_rng(2).standard_normal(1500)
    (g, sn), = spike_bound.oracle_known(np.stack([clean + noise]), np.stack([clean]))
    assert abs(sn - np.std(noise)) < 1e-12
    assert 0 < g[0] < 2 and len(g) == 2
    # Told the truth about the noise, inference cannot do much worse than estimating it.
    told = spikes.score_traces(np.stack([clean + noise]), counts[:, None], [(g, sn)])
    guessed = spikes.score_traces(np.stack([clean + noise]), counts[:, None])
    assert told["r"] > guessed["r"] - 0.05 and told["r"] > 0.3


def test_a_missing_trace_gets_no_oracle():
    nan = np.full(50, np.nan)
    assert spike_bound.oracle_known(np.stack([nan]), np.stack([nan])) == [None]


def test_restoration_brings_back_a_removed_cell_sized_event_and_little_noise():
    import event_restoration
    rng = np.random.default_rng(3)
    yy, xx = np.mgrid[:48, :48]
    cell = np.exp(-((yy - 24) ** 2 + (xx - 24) ** 2) / (2 * 4.0 ** 2))
    clean = np.full((20, 48, 48), 10.0)
    clean[7] += 6 * cell                       # a one-frame event
    raw = clean + rng.standard_normal(clean.shape)
    output = np.full_like(clean, 10.0)          # a denoiser that removed the noise and the event
    restored = event_restoration.restore_events(raw, output, k=3)
    assert restored[7][cell > 0.5].mean() - 10 > 0.6 * 6 * cell[cell > 0.5].mean()   # most of the event is back
    quiet = np.delete(restored, 7, axis=0) - 10
    assert np.sqrt((quiet ** 2).mean()) < 0.05   # noise added back where nothing happened: far below the raw's 1
