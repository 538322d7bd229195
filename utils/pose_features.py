"""Per-frame pose features from crop-pixel keypoints, vectorised NumPy.

Input: keypoints [T, K, 3] in crop pixels (x, y, conf), the crop size and the clip's fps.
Output: features [T, D] with D = pose_feature_dim(K) = 3K + K(K-1)/2 + K, in this order:

    centred coordinates  3K   x / crop_size - 0.5, y / crop_size - 0.5, conf   (per keypoint, interleaved)
    pairwise distances   K(K-1)/2   |p_i - p_j| / crop_size for i < j (upper triangle, row-major)
    speeds               K    |p_t - p_{t-1}| / crop_size * fps  (crop-normalised units per second);
                              frame 0 takes frame 1's speed, so a clip's first frame is not a fake stop

Missing points: a keypoint that is NaN or has conf < min_conf is missing. Its coordinates are 0 (the crop
centre) and its conf 0; every distance involving it is 0; its speed is 0 in a frame where it, or the
frame before, is missing. The conf channel lets a model tell "missing" from "at the centre".
"""
import numpy as np



def keypoints_present(xy: np.ndarray, conf: np.ndarray, min_conf: float) -> np.ndarray:
    """[T, K] bool: the keypoint has finite coordinates and a finite confidence >= min_conf."""
    return np.isfinite(xy).all(-1) & np.isfinite(conf) & (conf >= min_conf)


def pose_feature_dim(num_keypoints: int) -> int:
    k = num_keypoints
    return 3 * k + k * (k - 1) // 2 + k


def pose_features(keypoints: np.ndarray, crop_size: float, fps: float, min_conf: float = 0.0) -> np.ndarray:
    """[T, K, 3] crop-pixel keypoints -> [T, pose_feature_dim(K)] float32 features (see module docstring)."""
    kp = np.asarray(keypoints, np.float32)
    if kp.ndim != 3 or kp.shape[-1] != 3:
        raise ValueError(f"keypoints must be [T, K, 3] (x, y, conf), got shape {kp.shape}")
    t, k, _ = kp.shape
    xy = kp[..., :2] / crop_size  # (T, K, 2)
    conf = np.nan_to_num(kp[..., 2], nan=0.0)
    present = keypoints_present(xy, kp[..., 2], min_conf)  # (T, K)
    xy = np.where(present[..., None], xy, np.nan)

    centred = np.concatenate([xy - 0.5, np.where(present, conf, 0.0)[..., None]], -1)  # (T, K, 3)
    iu, ju = np.triu_indices(k, 1)
    dist = np.linalg.norm(xy[:, iu] - xy[:, ju], axis=-1)  # (T, K(K-1)/2)
    step = np.linalg.norm(np.diff(xy, axis=0), axis=-1) * fps  # (T-1, K)
    speed = np.concatenate([step[:1], step], 0) if t > 1 else np.zeros((t, k), np.float32)
    features = np.concatenate([centred.reshape(t, 3 * k), dist, speed], 1)
    return np.nan_to_num(features, nan=0.0).astype(np.float32)
