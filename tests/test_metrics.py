"""One definition of macro-F1 (utils/results/metrics.py), shared by training, evaluation and the benches."""
import numpy as np
import pytest

from utils.results.metrics import classification_scores, segment_f1


def macro_f1(y_true, y_pred, classes):
    return classification_scores(y_true, y_pred, classes)["macro_f1"]


def test_macro_f1_averages_over_classes_in_the_truth_or_the_predictions():
    true = ["walk", "walk", "rest", "rest", "rest", "walk"]
    pred = ["walk", "rest", "rest", "rest", "unknown", "walk"]
    scores = classification_scores(true, pred, ["walk", "rest", "groom"])
    walk = 2 * (2 / 2) * (2 / 3) / (2 / 2 + 2 / 3)  # precision 1, recall 2/3
    rest = 2 * (2 / 3) * (2 / 3) / (4 / 3)  # precision 2/3, recall 2/3
    assert scores["per_class"]["walk"]["f1"] == pytest.approx(walk)
    assert scores["per_class"]["rest"]["f1"] == pytest.approx(rest)
    assert scores["macro_f1"] == pytest.approx((walk + rest) / 2)  # groom occurs nowhere: left out, not a 0
    assert scores["accuracy"] == pytest.approx(4 / 6)
    assert scores["confusion"]["columns"] == ["walk", "rest", "groom", "unknown"]
    assert scores["confusion"]["counts"] == [[2, 1, 0, 0], [0, 2, 0, 1], [0, 0, 0, 0]]


def test_a_class_in_the_truth_never_predicted_counts_as_zero():
    assert macro_f1([0, 0, 1, 1], [0, 0, 0, 0], [0, 1, 2]) == pytest.approx((2 * (0.5 * 1) / 1.5 + 0.0) / 2)


def test_training_validation_uses_the_same_definition():
    import torch

    from training.loop import evaluate

    class Fixed(torch.nn.Module):  # predicts class 0 for every clip; 3 classes, class 2 absent from the split
        sees_frames, uses_pose, uses_motion, classifier = None, True, False, torch.nn.Linear(1, 3)

        def forward_from_features(self, visual, pose, pose_present, motion):
            return pose[:, 0]

        def forward_head(self, x):
            return torch.tensor([[5.0, 0.0, 0.0]]).expand(len(x), 3)

    batch = {"pose": torch.zeros(4, 2, 1), "pose_present": torch.ones(4, dtype=torch.bool),
             "label": torch.tensor([0, 0, 1, 1]), "visual": torch.zeros(4, 2, 1)}
    result = evaluate(Fixed(), [batch], None, None, "cpu")
    assert result["macro_f1"] == pytest.approx(macro_f1([0, 0, 1, 1], [0, 0, 0, 0], [0, 1, 2]))


def test_segment_f1_counts_one_to_one_matches():
    true = ["a"] * 10 + ["b"] * 10 + ["a"] * 10
    pred = ["a"] * 12 + ["b"] * 6 + ["a"] * 12
    result = segment_f1(true, pred, ["a", "b"])
    assert result["a"]["f1"] == 1.0 and result["b"]["f1"] == 1.0  # IoU 10/12 and 6/10 >= 0.5
    shifted = segment_f1(true, ["b"] * 30, ["a", "b"])
    assert shifted["a"]["recall"] == 0.0 and shifted["b"]["precision"] == 0.0  # IoU 10/30 < 0.5
    assert np.isclose(shifted["macro_f1"], 0.0)


def test_decision_weights_correct_an_under_predicted_class():
    from utils.results.metrics import tune_decision_weights
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 2, 400)
    # class 1 is seen (its probability is higher when true) but the model leans to class 0
    p1 = np.clip(0.25 + 0.3 * labels + rng.normal(0, 0.1, 400), 0.01, 0.99)
    probs = np.stack([1 - p1, p1], 1)
    weights, tuned, plain = tune_decision_weights(probs, labels, 2)
    assert weights[0] == 1 and weights[1] > 1.2 and tuned > plain + 0.1
    balanced = np.stack([1 - (0.2 + 0.6 * labels), 0.2 + 0.6 * labels], 1)
    assert tune_decision_weights(balanced, labels, 2)[1] == 1.0  # nothing to correct: stays perfect
