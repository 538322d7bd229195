"""Post-processing of per-frame probabilities: threshold, smoothing, minimum bout length, bouts."""
import numpy as np

from utils.results.timeline import NO_WINDOW, UNKNOWN, frame_labels, merge_short_bouts, smooth_probabilities, to_bouts

NAMES = ["rest", "walk"]


def probs_for(sequence):
    """One-hot-ish probabilities (0.9 on the named class) for a list of class names."""
    p = np.full((len(sequence), 2), 0.1)
    for i, name in enumerate(sequence):
        p[i, NAMES.index(name)] = 0.9
    return p


def test_threshold_and_uncovered_frames():
    probs = np.array([[0.9, 0.1], [0.55, 0.45], [0.2, 0.8], [0.5, 0.5]])
    covered = np.array([True, True, True, False])
    labels, conf = frame_labels(probs, covered, NAMES, prob_threshold=0.6)
    assert list(labels) == ["rest", UNKNOWN, "walk", NO_WINDOW]
    np.testing.assert_allclose(conf, [0.9, 0.55, 0.8, 0.0])


def test_median_smoothing_removes_a_one_frame_flicker():
    probs = probs_for(["rest"] * 5 + ["walk"] + ["rest"] * 5)
    labels, _ = frame_labels(probs, np.ones(11, bool), NAMES, smoothing="median", smoothing_window=3)
    assert set(labels) == {"rest"}
    np.testing.assert_allclose(smooth_probabilities(probs, 1), probs)


def test_majority_smoothing():
    probs = probs_for(["rest", "rest", "walk", "rest", "walk", "walk", "walk"])
    labels, _ = frame_labels(probs, np.ones(7, bool), NAMES, smoothing="majority", smoothing_window=3)
    assert list(labels) == ["rest", "rest", "rest", "walk", "walk", "walk", "walk"]


def test_bouts_cover_every_frame_without_overlap():
    labels = np.array(["rest"] * 4 + ["walk"] * 3 + ["rest"] * 2, dtype=object)
    bouts = to_bouts(labels, np.linspace(0, 1, 9))
    assert [(b.start_frame, b.end_frame, b.behavior) for b in bouts] == [(0, 3, "rest"), (4, 6, "walk"), (7, 8, "rest")]
    assert bouts[1].mean_confidence == np.mean(np.linspace(0, 1, 9)[4:7])


def test_short_bouts_merge_into_the_longer_neighbour():
    labels = np.array(["rest"] * 6 + ["walk"] * 1 + ["groom"] * 4 + ["walk"] * 2 + ["groom"] * 3, dtype=object)
    merged = merge_short_bouts(labels, min_frames=3)
    assert [(b.start_frame, b.end_frame, b.behavior) for b in to_bouts(merged, np.zeros(16))] == \
        [(0, 6, "rest"), (7, 15, "groom")]
    assert list(merge_short_bouts(labels, 1)) == list(labels)


def test_segment_f1_matches_bouts_at_iou_half():
    from utils.results.metrics import segment_f1
    true = ["rest"] * 10 + ["walk"] * 10 + ["rest"] * 10
    pred = ["rest"] * 12 + ["walk"] * 4 + ["rest"] * 14  # walk bout IoU 4/10 < 0.5: missed
    scores = segment_f1(true, pred, NAMES)
    assert scores["walk"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "true_bouts": 1, "pred_bouts": 1}
    # true rest bouts 0-9 and 20-29; predicted 0-11 (IoU 10/12) and 16-29 (IoU 10/14): both matched
    assert scores["rest"]["f1"] == 1.0
    assert scores["macro_f1"] == 0.5
    perfect = segment_f1(true, true, NAMES)
    assert perfect["macro_f1"] == 1.0
    # frames nobody annotated score nothing: the rest bout there is no false positive, and the walk bout that
    # runs 10 frames into them is cut at the labelled edge (IoU 1, not 5/15)
    unlabelled = segment_f1([None] * 10 + ["walk"] * 5, ["rest"] * 5 + ["walk"] * 10, NAMES)
    assert unlabelled["walk"] == {"precision": 1.0, "recall": 1.0, "f1": 1.0, "true_bouts": 1, "pred_bouts": 1}
    assert unlabelled["rest"]["pred_bouts"] == 0 and unlabelled["macro_f1"] == 1.0


def reference_merge_short_bouts(labels, min_frames):
    """The former quadratic implementation, kept here as the oracle of the linear one."""
    labels = labels.copy()
    while min_frames > 1:
        bouts = to_bouts(labels, np.zeros(len(labels)))
        short = [i for i, b in enumerate(bouts) if b.end_frame - b.start_frame + 1 < min_frames]
        if not short or len(bouts) == 1:
            break
        i = min(short, key=lambda j: bouts[j].end_frame - bouts[j].start_frame)
        neighbours = [bouts[j] for j in (i - 1, i + 1) if 0 <= j < len(bouts)]
        target = max(neighbours, key=lambda b: b.end_frame - b.start_frame)
        labels[bouts[i].start_frame: bouts[i].end_frame + 1] = target.behavior
    return labels


def reference_majority(labels, window):
    half, out = window // 2, labels.copy()
    for i in range(len(labels)):
        values, counts = np.unique(labels[max(0, i - half): i + half + 1], return_counts=True)
        out[i] = labels[i] if counts[values == labels[i]].sum() == counts.max() else values[counts.argmax()]
    return out


def test_linear_post_processing_equals_the_reference_on_random_noisy_labels():
    from utils.results.timeline import majority_filter
    rng = np.random.default_rng(0)
    for _ in range(300):
        runs = rng.integers(1, 8, size=rng.integers(1, 120))
        index = np.repeat(rng.integers(0, rng.integers(1, 5), size=len(runs)), runs)
        names = np.array(["a", "b", "c", "d"], dtype=object)[index]
        min_frames, window = int(rng.integers(1, 9)), int(rng.integers(1, 8))
        assert (merge_short_bouts(names, min_frames) == reference_merge_short_bouts(names, min_frames)).all()
        assert (majority_filter(index, window) == reference_majority(index, window)).all()


def test_bouts_of_an_hour_of_noisy_labels_stay_consistent():
    labels = np.array(["a", "b", "c"], dtype=object)[np.random.default_rng(1).integers(0, 3, 108_000)]
    merged = merge_short_bouts(labels, 5)
    bouts = to_bouts(merged, np.ones(len(merged)))
    assert all(b.end_frame - b.start_frame + 1 >= 5 for b in bouts)
    assert bouts[0].start_frame == 0 and bouts[-1].end_frame == len(labels) - 1
    assert all(a.end_frame + 1 == b.start_frame and a.behavior != b.behavior for a, b in zip(bouts, bouts[1:]))
