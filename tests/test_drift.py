"""utils/results/drift.py: the reference is fitted on training windows, calibrated on validation ones, and flags videos
whose windows lie away from every training class."""
import numpy as np
import torch

from utils.results.drift import DriftReference, feature_shift


def clustered(rng, n: int, shift=0.0, dims: int = 20):
    """Windows of 3 classes around their own centres, optionally moved by `shift` (in spreads) on 3 dims."""
    labels = rng.integers(0, 3, n)
    centres = np.eye(3, dims) * 8
    x = centres[labels] + rng.standard_normal((n, dims))
    x[:, 10:13] += shift
    return x, labels


def confident(rng, n: int, top: float):
    probs = np.full((n, 3), (1 - top) / 2)
    probs[:, 0] = top + rng.uniform(-0.05, 0.05, n)
    return probs


def fitted(rng) -> DriftReference:
    train, labels = clustered(rng, 600)
    val, _ = clustered(rng, 300)
    return DriftReference.fit(train, labels, val, confident(rng, 300, 0.8), ["a.mp4"] * 150 + ["b.mp4"] * 150)


def test_a_video_like_validation_is_not_flagged_and_a_shifted_one_is():
    rng = np.random.default_rng(0)
    ref = fitted(rng)
    like, _ = clustered(rng, 400)
    score = ref.score(ref.distances(like), confident(rng, 400, 0.8).max(1))
    assert score["drift_score"] < 0.05 and not score["drift_warning"]
    shifted, _ = clustered(rng, 400, shift=3.0)
    score = ref.score(ref.distances(shifted), confident(rng, 400, 0.8).max(1))
    assert score["drift_score"] > 0.5 and score["drift_warning"], score
    assert score["relative_median_distance"] > 1.2


def test_a_window_between_classes_is_unfamiliar_though_inside_the_overall_cloud():
    rng = np.random.default_rng(1)
    ref = fitted(rng)
    between = np.tile(np.eye(3, 20).mean(0) * 8, (50, 1)) + rng.standard_normal((50, 20))  # mean of all classes
    assert np.mean(ref.distances(between) > ref.distance_limit) > 0.9


def test_low_confidence_alone_flags_a_video():
    rng = np.random.default_rng(2)
    ref = fitted(rng)
    like, _ = clustered(rng, 400)
    score = ref.score(ref.distances(like), confident(rng, 400, 0.45).max(1))
    assert score["low_confidence_share"] > 0.9 and score["drift_warning"]


def test_the_reference_is_plain_data_for_a_weights_only_checkpoint(tmp_path):
    ref = fitted(np.random.default_rng(3))
    torch.save({"drift": ref.recorded()}, tmp_path / "c.pt")
    back = DriftReference.from_checkpoint(torch.load(tmp_path / "c.pt", weights_only=True))
    x, _ = clustered(np.random.default_rng(4), 10)
    np.testing.assert_allclose(back.distances(x), ref.distances(x))
    assert DriftReference.from_checkpoint({}) is None


def test_feature_shift_is_relative_to_the_gap_between_behaviours():
    # column 0 separates rest (0) from walk (10) and moves by 5 on the other rig: half the gap; column 1 separates
    # them as well and does not move; column 2 separates nothing and moves by twice its own interquartile range (0.5)
    rng = np.random.default_rng(0)
    labels = np.repeat(["rest", "walk"], 400)
    source = np.stack([np.where(labels == "walk", 10.0, 0.0), np.where(labels == "walk", 1.0, 0.0),
                       rng.uniform(0, 1, 800)], 1)
    target = source + [5.0, 0.0, 1.0]
    np.testing.assert_allclose(feature_shift(source, labels, target, labels), [0.5, 0.0, 2.0], atol=0.05)
    # a behaviour only one rig shows is left out
    more = np.concatenate([target, [[99.0, 99.0, 99.0]]])
    np.testing.assert_allclose(feature_shift(source, labels, more, np.append(labels, "groom")),
                               feature_shift(source, labels, target, labels))
