"""3D keypoints (x, y, z): Anipose CSVs read through movement, heights carried through preparation, features,
training, inference and pretraining, and 2D / 3D mix-ups refused at the start."""
import numpy as np
import pandas as pd
import pytest

from conftest import prepare_args
from utils.errors import UserError
from utils.features.motion import FeatureSpec, body_pose_feature_dim, height_features
from utils.readers.pose_io import is_pose_file, pose_file_problem, pose_stem, read_pose_file, write_pose_file
from utils.synthetic import KEYPOINT_NAMES, make_pose_file_dataset

NAMES = ["snout", "leftear", "rightear", "tailbase"]


def test_anipose_files_are_read_as_3d(tmp_path):
    rng = np.random.default_rng(0)
    xy = rng.uniform(0, 300, (30, 1, 4, 2)).astype(np.float32)
    z = rng.uniform(0, 40, (30, 1, 4)).astype(np.float32)
    conf = rng.uniform(0.5, 1.0, (30, 1, 4)).astype(np.float32)
    z[5, 0, 2] = np.nan  # not triangulated in this frame
    path = write_pose_file(tmp_path / "m1.anipose.csv", xy, conf, NAMES, z=z)
    (tmp_path / "m1.csv").write_text("frame,behavior\n0,rest\n")
    assert is_pose_file(path) and not is_pose_file(tmp_path / "m1.csv") and pose_stem(path) == "m1"
    recording = read_pose_file(path)
    assert recording.software == "Anipose" and recording.spatial_dims == 3
    order = [NAMES.index(n) for n in recording.keypoint_names]  # movement lists Anipose's keypoints by name
    assert sorted(recording.keypoint_names) == sorted(NAMES)
    finite = np.isfinite(z[:, :, order])
    np.testing.assert_allclose(recording.z[finite], z[:, :, order][finite], atol=1e-4)
    np.testing.assert_allclose(recording.xy[finite], xy[:, :, order][finite], atol=1e-4)
    np.testing.assert_allclose(recording.conf[finite], conf[:, :, order][finite], atol=1e-4)
    k = recording.keypoint_names.index(NAMES[2])
    assert np.isnan(recording.xy[5, 0, k]).all() and np.isnan(recording.z[5, 0, k]) and recording.conf[5, 0, k] == 0
    bad = tmp_path / "m2.anipose.csv"
    bad.write_text("a_x,a_y\n1,2\n")
    assert "neither DeepLabCut's header" in pose_file_problem(bad)


def test_height_features_by_hand():
    t, fps, length = 10, 10.0, 50.0
    z = np.tile(np.array([30.0, 10.0, 5.0]), (t, 1))
    z[:, 0] += 20.0 * np.arange(t) / fps  # the nose rises 20 px per second
    conf = np.ones((t, 3))
    conf[4, 2] = 0.0  # missing: 0 in its features, and the lowest point is then the next one
    refs = np.tile([length, 0, 1], (t, 1))
    features = height_features(z, conf, refs, fps, min_conf=0.1, track_smoothing_s=0)
    assert features.shape == (t, 6)
    np.testing.assert_allclose(features[0, :3], [25 / length, 5 / length, 0])
    np.testing.assert_allclose(features[4, :3], [(30 + 8 - 10) / length, 0, 0])
    np.testing.assert_allclose(features[1:, 3], 20 / length, rtol=1e-6)  # vertical speed in body lengths per s
    np.testing.assert_allclose(features[:, 4], 0, atol=1e-9)
    spec = FeatureSpec("body", 3, (2, 0), 0.1, 0, True, spatial_dims=3, track_smoothing_s=0)
    assert spec.pose_dim == body_pose_feature_dim(3) + 6
    xy = np.tile(np.array([[0.0, 0.0], [10.0, 0.0], [40.0, 0.0]]), (t, 1, 1))
    arrays = {"keypoints_xy_raw": xy, "keypoints_conf_raw": conf, "keypoints_z_raw": z, "scale_ref": refs,
              "bbox_xyxy": np.tile([0.0, 0.0, 40.0, 10.0], (t, 1))}
    pose, _ = spec.window_inputs(arrays, fps, True)
    np.testing.assert_allclose(pose[:, -6:], features)
    with pytest.raises(UserError, match="trained on 3D keypoints .* no heights"):
        spec.window_inputs({k: v for k, v in arrays.items() if k != "keypoints_z_raw"}, fps, True)
    with pytest.raises(UserError, match="'crop' are keypoints in the video crop"):
        FeatureSpec("crop", 3, (2, 0), 0.1, 64, True, spatial_dims=3)


@pytest.fixture(scope="module")
def runs_2d_3d(tmp_path_factory):
    """The same generated animals as 2D DeepLabCut files and as 3D Anipose files (x, y identical, plus heights):
    5 labelled recordings and 2 held-out ones each, prepared with --detector pose_file, and a gradient-boosted model
    on the "speeds" features trained on each (3D: the speeds plus the heights)."""
    import train_behavior_lstm as train
    from prepare_sequences_from_yolo import main as prepare
    root = tmp_path_factory.mktemp("pose_3d")
    out = {}
    for dims, suffix in ((2, "DLC_synthetic.csv"), (3, ".anipose.csv")):
        make_pose_file_dataset(root / f"data{dims}", 5, 500, seed=5, suffix=suffix, three_d=dims == 3)
        make_pose_file_dataset(root / f"held{dims}", 2, 500, seed=6, suffix=suffix, three_d=dims == 3)
        manifest = prepare(prepare_args("--dataset_root", root / f"data{dims}", "--output_root", root / f"prep{dims}",
                                        "--detector", "pose_file", "--pose_fps", 30, "--window_size", 30,
                                        "--window_stride", 10, "--train_ratio", 0.6, "--val_ratio", 0.4,
                                        "--test_ratio", 0))
        train.main(train.get_args_parser().parse_args([str(a) for a in [
            "--manifest_path", root / f"prep{dims}" / "sequence_manifest.json", "--output_dir", root / "runs",
            "--run_name", f"gbt{dims}", "--classifier", "gbt", "--backbone", "none", "--use_pose", "--pose_features",
            "speeds", "--gbt_max_iter", 40, "--num_workers", 0, "--device", "cpu"]]))
        out[dims] = (manifest, root / "runs" / f"gbt{dims}" / "best_model_macro_f1.pt")
    return root, out


def test_heights_are_prepared_with_the_windows(runs_2d_3d):
    root, runs = runs_2d_3d
    manifest = runs[3][0]
    assert manifest["meta"]["spatial_dims"] == 3 and runs[2][0]["meta"]["spatial_dims"] == 2
    entry = manifest["splits"]["train"][0]
    recording = read_pose_file(root / "data3" / entry["source_video"], 0.6)  # prepare's pose_min_likelihood
    start = entry["start_frame"]
    with np.load(root / "prep3" / entry["npz"]) as npz:
        np.testing.assert_allclose(npz["keypoints_z_raw"], recording.z[start:start + 30, 0], atol=1e-3)
        np.testing.assert_allclose(npz["keypoints_xy_raw"], recording.xy[start:start + 30, 0], atol=1e-3)
    # the generator's rears lift the nose: in body lengths, high while rearing, low while walking
    truth = pd.read_csv(root / "data3" / "session_00.csv")["behavior"].to_numpy()
    session = read_pose_file(root / "data3" / "session_00.anipose.csv")
    nose = session.keypoint_names.index("nose")
    length = 1.0 / 0.12 * np.nanmedian(session.z[truth == "walk", 0, session.keypoint_names.index("tail_base")])
    assert np.nanmedian(session.z[truth == "rear", 0, nose]) > 0.6 * length
    assert np.nanmedian(session.z[truth == "walk", 0, nose]) < 0.2 * length


def test_a_3d_model_sees_what_2d_speeds_cannot(runs_2d_3d):
    """Rest and rear are both still from above; their heights tell them apart."""
    import benchmark_pipeline
    from utils.checkpoint import load_checkpoint
    root, runs = runs_2d_3d
    scores = {}
    for dims, (_, model) in runs.items():
        assert load_checkpoint(model)["features"]["spatial_dims"] == dims
        scores[dims] = benchmark_pipeline.main(benchmark_pipeline.get_args_parser().parse_args([
            "--model_path", str(model), "--input_dir", str(root / f"held{dims}"), "--output_root",
            str(root / f"eval{dims}"), "--device", "cpu"]))["scores"]
    rear = {dims: s["per_class"]["rear"]["f1"] for dims, s in scores.items()}
    assert scores[3]["macro_f1"] > 0.6, scores[3]["macro_f1"]  # five behaviours: chance is 0.2
    assert rear[3] > rear[2] + 0.1, rear


def test_2d_and_3d_files_are_not_mixed(runs_2d_3d, tmp_path):
    import infer_behavior_lstm as infer
    root, runs = runs_2d_3d

    def classify(model, path):
        infer.main(infer.get_args_parser().parse_args(["--model_path", str(model), "--video_path", str(path),
                                                       "--output_dir", str(tmp_path), "--device", "cpu"]))
    with pytest.raises(UserError, match=r"session_00DLC_synthetic.csv has 2D \(x, y\) keypoints, but .* 3D"):
        classify(runs[3][1], root / "held2" / "session_00DLC_synthetic.csv")
    with pytest.raises(UserError, match=r"session_00.anipose.csv has 3D \(x, y, z\) keypoints, but .* 2D"):
        classify(runs[2][1], root / "held3" / "session_00.anipose.csv")
    assert not list(tmp_path.glob("*.frames.csv"))


def test_pretraining_reads_3d_pose_files(runs_2d_3d, tmp_path):
    import pretrain_pose
    from utils.checkpoint import load_checkpoint
    root, _ = runs_2d_3d
    manifest = root / "prep3" / "sequence_manifest.json"
    small = ["--dense_hidden", 16, "--dense_layers", 4, "--dense_stages", 1, "--dense_chunk", 64, "--batch_size", 8]

    def pretrain(pose_dir, run):
        return pretrain_pose.main(pretrain_pose.get_args_parser().parse_args([str(a) for a in [
            "--manifest_path", manifest, "--pose_dir", pose_dir, "--classifier", "mstcn", "--use_pose",
            "--pose_features", "speeds", "--output_dir", tmp_path, "--run_name", run, "--device", "cpu", "--epochs",
            1, *small]]))
    result = pretrain(root / "held3", "p3")
    assert result.recordings == 5 + 2 and np.isfinite(result.history[-1]["train_loss"])
    features = load_checkpoint(tmp_path / "p3" / "best_model.pt")["features"]
    assert features["spatial_dims"] == 3 and features["num_keypoints"] == len(KEYPOINT_NAMES)
    with pytest.raises(UserError, match=r"has 2D \(x, y\) keypoints, but .*sequence_manifest.json.* 3D"):
        pretrain(root / "held2", "p2")
