"""Tests of the spike scoring (eval/spikes.py), in seconds: `pytest eval/test_spikes.py` or
`python eval/test_spikes.py` in the evaluation environment (scripts/evaluate.sh runs the same
self-test before every evaluation)."""

import numpy as np

import spikes


def test_self_test_passes():
    """Synthetic AR(2) traces: near-perfect without noise, lower with noise, no events from noise,
    baseline filters equal to a direct computation."""
    assert spikes.self_test(verbose=False) == []


def test_spikes_csv_is_read_by_neuron(tmp_path):
    path = tmp_path / "spikes.csv"
    path.write_text("frame,neuron_1,neuron_2\n0,0,1\n1,2,0\n2,0,0\n")
    table = spikes.read_spikes_csv(path)
    assert table.shape == (3, 2)
    assert table[:, 0].tolist() == [0, 2, 0] and table[:, 1].tolist() == [1, 0, 0]


def test_mask_traces_average_each_label():
    movie = np.arange(2 * 2 * 3, dtype=np.float32).reshape(2, 2, 3)
    labels = np.array([[1, 1, 0], [0, 2, 0]])
    traces = spikes.mask_traces(movie, spikes.label_masks(labels, 3))
    assert np.allclose(traces[0], [0.5, 6.5]) and np.allclose(traces[1], [4, 10])
    assert np.isnan(traces[2]).all()  # a neuron without pixels has no trace


def test_a_silent_neuron_is_left_out_of_the_medians():
    trace, counts = spikes.synthetic_trace(frames=1500, noise=0.1)
    flat = 2.0 + 0.1 * np.random.default_rng(1).standard_normal(1500)
    result = spikes.score_traces(np.stack([trace, flat]), np.stack([counts, np.zeros(1500)], axis=1))
    assert result["neurons_scored"] == 1
    assert result["r"] == result["neurons"][0]["r"] and result["neurons"][1]["r"] is None


if __name__ == "__main__":
    import sys
    import tempfile
    from pathlib import Path
    test_self_test_passes()
    with tempfile.TemporaryDirectory() as folder:
        test_spikes_csv_is_read_by_neuron(Path(folder))
    test_mask_traces_average_each_label()
    test_a_silent_neuron_is_left_out_of_the_medians()
    print("4 passed, 0 failed")
    sys.exit(0)
