"""Pose features against hand-computed values, and the handling of missing points."""
import numpy as np
import pytest

from utils.pose_features import pose_feature_dim, pose_features


def test_dimension_formula():
    assert [pose_feature_dim(k) for k in (1, 2, 4, 6)] == [4, 9, 22, 39]
    assert pose_features(np.zeros((5, 6, 3)), 100, 30).shape == (5, 39)


def test_hand_computed_values():
    # two keypoints, crop 100 px, 10 fps; the second point moves 30 px right then 40 px down
    kp = np.array([[[50, 50, 0.9], [20, 10, 0.8]],
                   [[50, 50, 0.9], [50, 10, 0.7]],
                   [[50, 50, 0.9], [50, 50, 0.6]]], np.float32)
    f = pose_features(kp, crop_size=100, fps=10)
    # centred coordinates: x / 100 - 0.5, y / 100 - 0.5, conf
    np.testing.assert_allclose(f[0, :6], [0.0, 0.0, 0.9, -0.3, -0.4, 0.8], atol=1e-6)
    # distance between the points: frame 0 sqrt(30^2 + 40^2) = 50 px -> 0.5; frame 1 40 px; frame 2 0
    np.testing.assert_allclose(f[:, 6], [0.5, 0.4, 0.0], atol=1e-6)
    # speeds: point 1 moves 0.3 then 0.4 crop units per frame at 10 fps -> 3 and 4 per second
    np.testing.assert_allclose(f[:, 7], [0, 0, 0], atol=1e-6)
    np.testing.assert_allclose(f[:, 8], [3.0, 3.0, 4.0], atol=1e-5)


@pytest.mark.parametrize("missing", ["nan", "low_conf"])
def test_missing_points_are_zeroed_not_propagated(missing):
    kp = np.array([[[10, 10, 0.9], [30, 10, 0.9], [10, 50, 0.9]]] * 3, np.float32)
    kp[1, 2] = [np.nan, np.nan, np.nan] if missing == "nan" else [10, 50, 0.05]
    f = pose_features(kp, crop_size=100, fps=30, min_conf=0.1)
    assert np.isfinite(f).all()
    np.testing.assert_allclose(f[1, 6:9], [0, 0, 0])  # the missing point's x, y, conf
    np.testing.assert_allclose(f[1, 9:12], [0.2, 0.0, 0.0], atol=1e-6)  # d01 kept, d02 and d12 zeroed
    assert f[1, 14] == 0 and f[2, 14] == 0  # its speed: missing now, or in the frame before
    np.testing.assert_allclose(f[0], f[2])


def test_rejects_bad_shapes():
    with pytest.raises(ValueError, match=r"\[T, K, 3\]"):
        pose_features(np.zeros((5, 6, 2)), 100, 30)
