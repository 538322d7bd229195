"""Features measured against the rig's calibration (--body_length_cm with --pixels_per_cm) instead of the animal's own
running body length: the references, what they keep fixed, training and inference, and the checks at start."""
import numpy as np
import pytest

from conftest import prepared_pose_files
from utils.errors import UserError
from utils.features.motion import ScaleTracker, body_axis, body_feature_names, body_pose_features
from utils.schema import PreprocessingConfig
from utils.synthetic import KEYPOINT_NAMES, sample_label_sequence, simulate_pose, BEHAVIORS


def pulled(xy: np.ndarray, share: float) -> np.ndarray:
    """Another tracker's keypoint placement: nose and tail base at `share` of their distance from the neck."""
    out, neck = xy.copy(), xy[:, [KEYPOINT_NAMES.index("neck")]]
    ends = [KEYPOINT_NAMES.index("nose"), KEYPOINT_NAMES.index("tail_base")]
    out[:, ends] = neck + (xy[:, ends] - neck) * share
    return out


def references(xy, conf, calibrated_length=None) -> np.ndarray:
    tracker = ScaleTracker(body_axis(KEYPOINT_NAMES, len(KEYPOINT_NAMES)), calibrated_length)
    boxes = np.concatenate([np.nanmin(xy, 1), np.nanmax(xy, 1)], 1)
    return np.stack([tracker.update(b, np.concatenate([p, c[:, None]], 1), True) for b, p, c in zip(boxes, xy, conf)])


def test_calibrated_references_keep_speeds_whatever_the_keypoint_placement():
    labels = sample_label_sequence(300, np.random.default_rng(0), 20, 60, BEHAVIORS)
    xy, conf = simulate_pose(labels, 5, 30.0, noise_px=0.0, dropout=0.0)
    axis = body_axis(KEYPOINT_NAMES, len(KEYPOINT_NAMES))
    ear = body_feature_names(KEYPOINT_NAMES).index("speed left_ear")
    moved = pulled(xy, 0.65)

    def ear_speed(track, refs):
        return body_pose_features(track, conf, refs, 30.0, axis)[:, ear]
    fixed = references(xy, conf, 63.0)
    assert (fixed[:, 0] == 63.0).all() and (fixed[:, 1] == 63.0 ** 2).all()
    np.testing.assert_array_equal(references(moved, conf, 63.0)[:, :2], fixed[:, :2])  # [2]: the box's own aspect
    # the ears did not move: in calibrated units their speed is the same; the animal's own body length shrank with
    # the placement, so measured against it every speed looks about 1/0.65 times faster
    np.testing.assert_allclose(ear_speed(moved, fixed), ear_speed(xy, fixed), atol=1e-5)
    running = ear_speed(moved, references(moved, conf)), ear_speed(xy, references(xy, conf))
    ratio = np.median(running[0][running[1] > 0.05] / running[1][running[1] > 0.05])
    assert 1.3 < ratio < 1.7


def test_a_calibrated_dataset_needs_its_scale():
    with pytest.raises(UserError, match="body_length_cm 7 measures features in cm.*--pixels_per_cm"):
        PreprocessingConfig(dataset_root="x", body_length_cm=7.0).check()


@pytest.fixture(scope="module")
def calibrated_run(tmp_path_factory):
    """5 generated pose files (300 frames, 30 fps, the generator's 63-px, 9-cm mice: 7 px/cm) prepared with
    --body_length_cm 9, gradient-boosted trees trained on them; 2 held-out recordings of other animals."""
    import train_behavior_lstm as train
    root = tmp_path_factory.mktemp("calibrated")
    manifest = prepared_pose_files(root, 5, 300, seed=4, train_ratio=0.6,
                                   extra=("--pixels_per_cm", 7, "--body_length_cm", 9))
    train.main(train.get_args_parser().parse_args([
        "--manifest_path", str(manifest), "--output_dir", str(root / "runs"), "--run_name", "gbt",
        "--classifier", "gbt", "--use_pose", "--gbt_max_iter", "40", "--num_workers", "0", "--device", "cpu"]))
    return root, manifest, root / "runs" / "gbt" / "best_model_macro_f1.pt"


def test_a_calibrated_model_learns_and_needs_each_recordings_scale(calibrated_run, tmp_path):
    import benchmark_pipeline
    from utils.checkpoint import load_checkpoint
    from utils.data.manifest import load_manifest
    root, manifest, model = calibrated_run
    entry = load_manifest(manifest)["splits"]["train"][0]
    window = np.load(manifest.parent / entry["npz"])
    np.testing.assert_array_equal(window["scale_ref"][:, :2], [[63.0, 63.0 ** 2]] * len(window["scale_ref"]))
    trained = load_checkpoint(model)["preprocessing"]
    assert (trained["body_length_cm"], trained["pixels_per_cm"]) == (9.0, 7.0)

    def run(*flags):
        return benchmark_pipeline.main(benchmark_pipeline.get_args_parser().parse_args([
            "--model_path", str(model), "--input_dir", str(root / "held_out"), "--output_root", str(tmp_path / "eval"),
            "--device", "cpu", *flags]))
    with pytest.raises(UserError, match=r"units of 9 cm \(trained with --body_length_cm at 7 px/cm\).*--pixels_per_cm"):
        run()
    assert run("--pixels_per_cm", "7")["scores"]["macro_f1"] > 0.7  # five behaviours: chance is 0.2


def test_a_retrain_prepares_corrections_at_the_models_scale_and_says_so(calibrated_run, tmp_path, caplog):
    import yaml
    from training.retrain import plan_retrain
    _, manifest, model = calibrated_run
    (tmp_path / "corrected").mkdir()
    (tmp_path / "corrected" / "session_00.csv").write_text("frame,behavior\n0,walk\n")
    with caplog.at_level("WARNING", logger="retrain"):
        plan = plan_retrain(model, tmp_path / "corrected", manifest_path=manifest)
    assert "prepared at its training data's scale, 7 px/cm" in caplog.text
    prepared = yaml.safe_load(plan.prepare_config.read_text())["preprocessing"]
    assert (prepared["pixels_per_cm"], prepared["body_length_cm"]) == (7.0, 9.0)
