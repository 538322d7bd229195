"""Box-centre kinematics against hand-computed values."""
import numpy as np

from utils.results.kinematics import box_centres, point_kinematics


def test_point_kinematics_values_and_gaps():
    xy = np.array([[0, 0], [3, 4], [6, 8], [np.nan, np.nan], [6, 8], [6, 18]], float)
    k = point_kinematics(xy, fps=10)
    np.testing.assert_allclose(k["step_px"], [np.nan, 5, 5, np.nan, np.nan, 10])
    np.testing.assert_allclose(k["speed_px_s"], [np.nan, 50, 50, np.nan, np.nan, 100])
    np.testing.assert_allclose(k["accel_px_s2"], [np.nan, np.nan, 0, np.nan, np.nan, np.nan])
    np.testing.assert_allclose(k["cumulative_px"], [0, 5, 10, 10, 10, 20])


def test_box_centres():
    boxes = np.array([[0, 0, 10, 20], [np.nan] * 4])
    np.testing.assert_allclose(box_centres(boxes), [[5, 10], [np.nan, np.nan]])
