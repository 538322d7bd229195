"""Pose files from other trackers (DeepLabCut, SLEAP, NWB) as input: readers, the pose-only pipeline without video,
pose files beside videos, several animals, and the real BehaviorDEPOT recording (skipped without ../shared)."""
import numpy as np
import pandas as pd
import pytest

from conftest import prepare_args
from utils.data.crop_store import CropStoreReader
from utils.errors import UserError
from utils.readers.pose_io import (find_pose_file, is_pose_file, pose_stem, read_pose_file, recording_name,
                           write_pose_file)
from utils.synthetic import KEYPOINT_NAMES, make_long_video_dataset, make_pose_file_dataset, write_label_csv

NAMES = ["snout", "leftear", "rightear", "tailbase"]


def random_pose(frames=40, animals=2, seed=0):
    rng = np.random.default_rng(seed)
    xy = rng.uniform(0, 300, (frames, animals, len(NAMES), 2)).astype(np.float32)
    conf = rng.uniform(0.3, 1.0, (frames, animals, len(NAMES))).astype(np.float32)
    xy[3, 0, 1] = np.nan
    return xy, conf


def write_slp(path, xy, conf, animals):
    import sleap_io as sio
    arrays = np.concatenate([xy, conf[..., None]], -1)
    labels = sio.Labels.from_numpy(arrays, videos=[sio.Video(filename=str(path.with_suffix(".mp4")), open_backend=False)],
                                   skeletons=sio.Skeleton(list(NAMES)), tracks=[sio.Track(a) for a in animals],
                                   return_confidence=True)
    sio.save_slp(labels, str(path))


@pytest.mark.parametrize("name", ["m1DLC_resnet50_x.csv", "m1DLC_resnet50_x.h5", "m1.analysis.h5", "m1.slp"])
def test_readers_give_positions_likelihoods_and_animals(tmp_path, name):
    xy, conf = random_pose()
    path = tmp_path / name
    if name.endswith(".slp"):
        write_slp(path, xy, conf, ["a", "b"])
    else:
        write_pose_file(path, xy, conf, NAMES, ["a", "b"], fps=25)
    recording = read_pose_file(path, min_likelihood=0.5)
    assert (recording.software, pose_stem(path), recording.individuals) == (
        "SLEAP" if name.endswith((".slp", ".analysis.h5")) else "DeepLabCut", "m1", ["a", "b"])
    assert recording.keypoint_names == NAMES and recording.xy.shape == (40, 2, 4, 2)
    kept = np.isfinite(xy).all(-1) & (conf >= 0.5)
    np.testing.assert_allclose(recording.xy[kept], xy[kept], atol=1e-3)
    assert np.isnan(recording.xy[~kept]).all() and (recording.conf[~kept] == 0).all()
    np.testing.assert_allclose(recording.conf[kept], conf[kept], atol=1e-5)


def test_nwb_files_are_read_with_their_frame_rate(tmp_path):
    from movement.io import load_poses, save_poses
    from pynwb import NWBHDF5IO
    xy, conf = random_pose(animals=1)
    ds = load_poses.from_numpy(np.transpose(xy, (0, 3, 2, 1)), np.transpose(conf, (0, 2, 1)), individual_names=["a"],
                               keypoint_names=NAMES, fps=25)
    with NWBHDF5IO(str(tmp_path / "m1.nwb"), "w") as io:
        io.write(save_poses.to_nwb_file(ds))  # one file per animal: a list when there are several
    recording = read_pose_file(tmp_path / "m1.nwb")
    assert recording.fps == 25 and sorted(recording.keypoint_names) == sorted(NAMES)
    order = [NAMES.index(n) for n in recording.keypoint_names]
    np.testing.assert_allclose(recording.xy[5, 0], xy[5, 0, order], atol=1e-3)


def test_pose_files_are_told_from_label_files_and_paired_by_stem(tmp_path):
    xy, conf = random_pose(animals=1)
    pose = write_pose_file(tmp_path / "sessionDLC_resnet50_a.csv", xy, conf, NAMES)
    write_label_csv(tmp_path / "session.csv", ["rest"] * 40)
    (tmp_path / "session.mp4").write_bytes(b"")
    assert is_pose_file(pose) and not is_pose_file(tmp_path / "session.csv")
    assert find_pose_file(tmp_path / "session.mp4") == pose and recording_name(pose) == "session"
    with pytest.raises(UserError, match="not a pose file"):
        read_pose_file(tmp_path / "session.csv")


@pytest.fixture(scope="module")
def pose_run(tmp_path_factory):
    """8 generated DeepLabCut recordings without video (600 frames, 30 fps) prepared with --detector pose_file and
    a gradient-boosted model trained on them; 2 held-out recordings of other animals."""
    import train_behavior_lstm as train
    from prepare_sequences_from_yolo import main as prepare
    root = tmp_path_factory.mktemp("pose_only")
    make_pose_file_dataset(root / "data", 8, 600, seed=1)
    make_pose_file_dataset(root / "held_out", 2, 600, seed=2)
    manifest = prepare(prepare_args("--dataset_root", root / "data", "--output_root", root / "prepared", "--detector",
                                    "pose_file", "--pose_fps", 30, "--window_size", 30, "--window_stride", 10,
                                    "--train_ratio", 0.5, "--val_ratio", 0.5, "--test_ratio", 0))
    train.main(train.get_args_parser().parse_args([
        "--manifest_path", str(root / "prepared" / "sequence_manifest.json"), "--output_dir", str(root / "runs"),
        "--run_name", "gbt", "--classifier", "gbt", "--backbone", "none", "--use_pose", "--gbt_max_iter", "50",
        "--num_workers", "0", "--device", "cpu", "--tune_decision_weights", "--decision_folds", "2"]))
    return root, manifest, root / "runs" / "gbt" / "best_model_macro_f1.pt"


def test_pose_files_alone_make_windows_without_frames(pose_run):
    root, manifest, _ = pose_run
    assert manifest["meta"]["has_frames"] is False and manifest["meta"]["keypoint_names"] == list(KEYPOINT_NAMES)
    entry = manifest["splits"]["train"][0]
    with np.load(root / "prepared" / entry["npz"]) as npz:
        assert "frames" not in npz.files
        xy, boxes = npz["keypoints_xy_raw"], npz["bbox_xyxy"]
    start = entry["start_frame"]
    recording = read_pose_file(root / "data" / entry["source_video"], 0.6)
    np.testing.assert_allclose(xy, recording.xy[start:start + 30, 0], atol=1e-3)
    present = np.isfinite(xy).all(-1)
    assert (boxes[:, None, :2] <= np.where(present[..., None], xy, np.inf)).all()  # the box holds its keypoints
    assert (boxes[:, None, 2:] >= np.where(present[..., None], xy, -np.inf)).all()


def test_preparing_again_with_other_windows_reads_the_pose_files_again(pose_run, tmp_path):
    from prepare_sequences_from_yolo import main as prepare
    root, first, _ = pose_run
    for window in (30, 20):  # the second run finds the first one's tracking tables: pose files are read again
        again = prepare(prepare_args("--dataset_root", root / "held_out", "--output_root", tmp_path, "--detector",
                                     "pose_file", "--pose_fps", 30, "--window_size", window, "--window_stride", 10,
                                     "--split_strategy", "window"))
    entry = again["splits"]["train"][0]
    with np.load(tmp_path / entry["npz"]) as npz:
        assert npz["keypoints_xy_raw"].shape == (20, len(KEYPOINT_NAMES), 2) and np.isfinite(npz["scale_ref"]).all()
        assert np.isfinite(npz["keypoints_xy_raw"]).mean() > 0.9
    assert again["meta"]["keypoint_names"] == first["meta"]["keypoint_names"]


def test_a_damaged_pose_file_is_skipped_with_the_reason(pose_run, tmp_path):
    import shutil
    from prepare_sequences_from_yolo import main as prepare
    root = pose_run[0]
    shutil.copytree(root / "held_out", tmp_path / "data")
    (tmp_path / "data" / "brokenDLC_x.csv").write_text("scorer,a\nbodyparts,b\n1,2\n")
    write_label_csv(tmp_path / "data" / "broken.csv", ["rest"] * 40)
    manifest = prepare(prepare_args("--dataset_root", tmp_path / "data", "--output_root", tmp_path / "p", "--detector",
                                    "pose_file", "--pose_fps", 30, "--window_size", 30, "--split_strategy", "window"))
    assert {e["source_video"] for s in manifest["splits"].values() for e in s} == {
        "session_00DLC_synthetic.csv", "session_01DLC_synthetic.csv"}
    assert any("cannot read pose file" in line and "brokenDLC_x.csv" in line for line in manifest["summary"])


def test_pose_only_model_classifies_held_out_pose_files(pose_run):
    import benchmark_pipeline
    root, _, model = pose_run
    result = benchmark_pipeline.main(benchmark_pipeline.get_args_parser().parse_args([
        "--model_path", str(model), "--input_dir", str(root / "held_out"), "--output_root", str(root / "eval"),
        "--pixels_per_cm", "10", "--device", "cpu", "--zones", "arena:-1e4,-1e4;1e4,-1e4;1e4,1e4;-1e4,1e4",
        "nowhere:-30,-30;-20,-30;-20,-20"]))
    assert result["scores"]["macro_f1"] > 0.6  # five behaviours: chance is 0.2
    frames = pd.read_csv(root / "eval" / "session_00.frames.csv")
    assert len(frames) == 600 and set(frames["label"]) <= {"walk", "rest", "groom", "rear", "turn"}
    per_frame = pd.read_excel(root / "eval" / "session_00.metrics.xlsx", sheet_name="per_frame")
    np.testing.assert_allclose(per_frame["box_speed_cm_s"], per_frame["box_speed_px_s"] / 10, rtol=1e-3, atol=1e-3)
    assert not (root / "eval" / "session_00.review.mp4").exists()
    zones = pd.read_excel(root / "eval" / "session_00.metrics.xlsx", sheet_name="zones").set_index(["zone", "behavior"])
    seen = np.isfinite(per_frame["box_speed_px_s"]).sum() + 1  # frames with a position (the first has no speed)
    assert zones.loc[("arena", "all"), "time_in_zone_s"] == pytest.approx(seen / 30, abs=0.04)
    assert zones.loc[("arena", "all"), "entries"] == 1 and zones.loc[("arena", "all"), "latency_to_first_entry_s"] == 0
    for behavior in set(frames["label"]):
        assert zones.loc[("arena", behavior), "percent_of_behavior"] == pytest.approx(100)
    nowhere = zones.loc["nowhere"]
    assert (nowhere["time_in_zone_s"] == 0).all() and nowhere["latency_to_first_entry_s"].isna().all()


def test_decision_weights_from_the_checkpoint_decide(pose_run, tmp_path):
    import infer_behavior_lstm as infer
    from utils.checkpoint import load_checkpoint, save_checkpoint
    root, manifest, model = pose_run
    log = (model.parent / "train.log").read_text()
    # tuned on validation plus every training window, each predicted by trees fitted without its block of time
    assert f"out-of-fold predictions of {len(manifest['splits']['train'])} training windows in 2 blocks" in log
    ckpt = load_checkpoint(model)
    assert len(ckpt["decision_weights"]) == len(ckpt["class_names"]) == 5 and ckpt["decision_weights"][0] == 1
    windows = {}
    for name, rest_weight in (("plain", 1.0), ("rest", 10.0)):
        ckpt["decision_weights"] = [rest_weight if c == "rest" else 1.0 for c in ckpt["class_names"]]
        save_checkpoint(tmp_path / f"{name}.pt", **{k: v for k, v in ckpt.items() if k != "format_version"})
        infer.main(infer.get_args_parser().parse_args([
            "--model_path", str(tmp_path / f"{name}.pt"), "--output_dir", str(tmp_path / name),
            "--video_path", str(root / "held_out" / "session_00DLC_synthetic.csv")]))
        windows[name] = pd.read_excel(tmp_path / name / "session_00.metrics.xlsx", sheet_name="windows")
    np.testing.assert_allclose(windows["rest"].filter(regex="^p_").sum(1), 1.0, atol=1e-3)
    plain, weighted = windows["plain"], windows["rest"]
    both = (plain["p_rest"] > 0.05) & (plain.filter(regex="^p_").drop(columns="p_rest").max(1) > 0.05)
    assert both.sum() >= 3  # windows where rest competes with another behaviour
    other = plain.filter(regex="^p_").drop(columns="p_rest").idxmax(1)[both]
    ratio = [weighted.at[i, "p_rest"] / weighted.at[i, c] / (plain.at[i, "p_rest"] / plain.at[i, c])
             for i, c in other.items()]
    np.testing.assert_allclose(ratio, 10.0, rtol=0.05)


def test_pose_file_errors_come_at_start_with_the_fix(pose_run, tmp_path):
    import infer_behavior_lstm as infer
    import train_behavior_lstm as train
    from prepare_sequences_from_yolo import main as prepare
    root, _, model = pose_run
    xy, conf = random_pose(animals=1)
    other = write_pose_file(tmp_path / "otherDLC_x.csv", xy, conf, NAMES)

    def run(*extra):
        return infer.main(infer.get_args_parser().parse_args(["--model_path", str(model), "--output_dir",
                                                               str(tmp_path / "out"), *map(str, extra)]))
    with pytest.raises(UserError, match="otherDLC_x.csv has keypoints .*snout.* trained on .*nose"):
        run("--video_path", other)
    with pytest.raises(UserError, match="backbone mobilenet_v3_small classifies frames"):
        train.main(train.get_args_parser().parse_args([
            "--manifest_path", str(root / "prepared" / "sequence_manifest.json"), "--output_dir", str(tmp_path),
            "--no_pretrained_backbone"]))
    with pytest.raises(UserError, match="no windows were produced"):
        prepare(prepare_args("--dataset_root", root / "held_out", "--output_root", tmp_path / "p", "--detector",
                             "pose_file", "--window_size", 10))
    assert "does not store its frame rate (DeepLabCut); pass --pose_fps" in (tmp_path / "p" / "prepare.log").read_text()


def test_windows_keep_their_duration_at_another_frame_rate(pose_run, tmp_path, caplog):
    import infer_behavior_lstm as infer
    root, _, model = pose_run
    recording = read_pose_file(root / "held_out" / "session_01DLC_synthetic.csv")
    half = write_pose_file(tmp_path / "slowDLC_x.csv", recording.xy[::2], recording.conf[::2], KEYPOINT_NAMES)
    result = infer.main(infer.get_args_parser().parse_args([
        "--model_path", str(model), "--video_path", str(half), "--pose_fps", "15", "--output_dir", str(tmp_path)]))
    assert "windows of 15 frames" in caplog.text and result["frames"] == 300
    assert result["windows"] == len(range(0, 300 - 15 + 1, 2)) + 1  # stride a sixth of 15, plus the tail window


def test_another_trackers_names_are_mapped_to_the_models(pose_run, tmp_path, caplog):
    """A file with the model's keypoints under other names, in another order, with an extra one: refused at start
    naming what is missing and the flag; with --keypoint_map it gives exactly the original file's result. A keypoint
    the map declares absent runs, its features missing."""
    import infer_behavior_lstm as infer
    root, _, model = pose_run
    recording = read_pose_file(root / "held_out" / "session_00DLC_synthetic.csv")
    # nose, left_ear, right_ear, neck, tail_base, tail_tip as another tracker names them, plus a head implant
    names = ["tail_end", "TailBase", "Neck", "right_ear", "Left Ear", "snout", "implant"]
    order = [5, 4, 3, 2, 1, 0, 0]
    other = write_pose_file(tmp_path / "otherDLC_x.csv", recording.xy[:, :, order] + [[[[0, 0]] * 6 + [[5, 5]]]],
                            recording.conf[:, :, order], names)

    def run(path, out, *extra):
        return infer.main(infer.get_args_parser().parse_args([
            "--model_path", str(model), "--video_path", str(path), "--output_dir", str(tmp_path / out), *extra]))
    with pytest.raises(UserError, match=r"otherDLC_x.csv has keypoints .* nose, tail_tip not found; name them with "
                                        r"--keypoint_map '<file's name>=nose'"):
        run(other, "refused")
    assert [p.name for p in (tmp_path / "refused").iterdir()] == ["other.infer.log"]  # the run's log, no outputs
    run(root / "held_out" / "session_00DLC_synthetic.csv", "original")
    run(other, "mapped", "--keypoint_map", "snout=nose", "tail_end=tail_tip")
    assert "Left Ear read as left_ear" in caplog.text and "not used: implant" in caplog.text
    original = pd.read_csv(tmp_path / "original" / "session_00.frames.csv")
    mapped = pd.read_csv(tmp_path / "mapped" / "other.frames.csv")
    pd.testing.assert_frame_equal(original.drop(columns="unfamiliar", errors="ignore"),
                                  mapped.drop(columns="unfamiliar", errors="ignore"))

    no_tip = write_pose_file(tmp_path / "notipDLC_x.csv", recording.xy[:, :, :5], recording.conf[:, :, :5],
                             KEYPOINT_NAMES[:5])
    with pytest.raises(UserError, match="tail_tip not found"):
        run(no_tip, "refused")
    caplog.clear()
    result = run(no_tip, "absent", "--keypoint_map", "=tail_tip")
    assert "absent (never detected): tail_tip" in caplog.text and result["frames"] == 600
    with pytest.raises(UserError, match="keypoint_map entry 'snout' is not 'file name=name used'"):
        run(other, "refused", "--keypoint_map", "snout")


def test_a_folder_is_classified_by_a_submitit_array_and_gathered(pose_run, tmp_path):
    """--cluster local: submitit runs two shards as separate processes (as SLURM would run an array), the
    command waits and gathers their summaries; a task that fails as a whole (a damaged model) is reported with its
    log, and the exit status says so."""
    import batch_process_videos as batch
    root, _, model = pose_run

    def run(model_path, out, jobs):
        return batch.main(batch.get_args_parser().parse_args([
            "--input_dir", str(root / "held_out"), "--output_root", str(tmp_path / out), "--model_path",
            str(model_path), "--device", "cpu", "--cluster", "local", "--jobs", str(jobs), "--slurm_time_min", "10"]))
    summary = run(model, "out", 2)
    assert sorted(summary["video"]) == ["session_00DLC_synthetic.csv", "session_01DLC_synthetic.csv"]
    assert set(summary["status"]) == {"ok"} and sorted(summary["shard"]) == ["1/2", "2/2"]
    assert (summary["frames"] == 600).all()
    gathered = pd.read_csv(tmp_path / "out" / "batch_summary.csv")
    assert len(gathered) == 2 and (tmp_path / "out" / "batch_summary_2of2.csv").is_file()
    table = pd.read_csv(tmp_path / "out" / "session_01.frames.csv")
    assert len(table) == 600 and table["label"].isin(["walk", "rest", "groom", "rear", "turn"]).all()
    broken = tmp_path / "broken.pt"
    broken.write_bytes(model.read_bytes()[:1000])
    with pytest.raises(SystemExit) as exit_info:
        run(broken, "failed", 1)
    assert exit_info.value.code == 1
    failed = pd.read_csv(tmp_path / "failed" / "batch_summary.csv")
    assert failed["status"].tolist() == ["task failed"] and "broken.pt" in failed.loc[0, "error"].split(" (log: ")[0]
    assert "log: " in failed.loc[0, "error"]


def test_pose_file_beside_a_video_gives_crops_with_its_keypoints(tmp_path):
    from prepare_sequences_from_yolo import main as prepare
    videos = make_long_video_dataset(tmp_path / "data", num_videos=2, num_frames=60, seed=4)
    for video in videos:
        truth = np.load(video.with_suffix(".truth.npz"))
        kp = truth["keypoints"][:, None]
        write_pose_file(video.with_name(video.stem + "DLC_resnet50_lab.h5"), kp, np.ones(kp.shape[:3], np.float32),
                        KEYPOINT_NAMES)
    manifest = prepare(prepare_args("--dataset_root", tmp_path / "data", "--output_root", tmp_path / "prepared",
                                    "--detector", "pose_file", "--window_size", 20, "--window_stride", 20,
                                    "--crop_size", 64, "--split_strategy", "window"))
    assert manifest["meta"]["has_frames"] is True and manifest["meta"]["detector"] == "pose_file"
    entry = next(e for s in manifest["splits"].values() for e in s)
    store = CropStoreReader(tmp_path / "prepared" / entry["crop_store"])
    assert store.frames(entry["start_frame"], entry["end_frame"]).shape == (20, 64, 64, 3)
    with np.load(tmp_path / "prepared" / entry["npz"]) as npz:
        crop_kp, crop_box = npz["keypoints"], npz["crop_xyxy"]
        raw = npz["keypoints_xy_raw"]
    scale = 64 / (crop_box[:, 2] - crop_box[:, 0])
    np.testing.assert_allclose(crop_kp[..., :2], (raw - crop_box[:, None, :2]) * scale[:, None, None], atol=1e-3)
    # the crop shows the animal: its keypoints lie inside, away from the border
    assert (crop_kp[..., :2] > 2).all() and (crop_kp[..., :2] < 62).all()


def test_a_pose_file_for_another_video_is_refused(tmp_path):
    from prepare_sequences_from_yolo import main as prepare
    video = make_long_video_dataset(tmp_path / "data", num_videos=1, num_frames=40, seed=4)[0]
    xy, conf = random_pose(frames=90, animals=1)
    write_pose_file(video.with_name(video.stem + "DLC_x.csv"), xy, conf, NAMES)
    with pytest.raises(UserError, match="no windows were produced"):
        prepare(prepare_args("--dataset_root", tmp_path / "data", "--output_root", tmp_path / "p", "--detector",
                             "pose_file", "--window_size", 10))
    assert "has 90 frames but" in (tmp_path / "p" / "prepare.log").read_text()


def test_several_animals_get_their_own_windows_labels_and_outputs(tmp_path):
    import infer_behavior_lstm as infer
    import train_behavior_lstm as train
    from prepare_sequences_from_yolo import main as prepare
    make_pose_file_dataset(tmp_path / "data", 4, 300, seed=3, animals=2)
    manifest = prepare(prepare_args("--dataset_root", tmp_path / "data", "--output_root", tmp_path / "prepared",
                                    "--detector", "pose_file", "--pose_fps", 30, "--window_size", 20,
                                    "--window_stride", 10, "--split_strategy", "window"))
    sources = {e["source_video"] for s in manifest["splits"].values() for e in s}
    assert sources == {f"session_{i:02d}DLC_synthetic.csv#mouse{a}" for i in range(4) for a in range(2)}
    labels = pd.read_csv(tmp_path / "data" / "session_00.csv")
    for entry in [e for s in manifest["splits"].values() for e in s if e["source_video"].startswith("session_00")]:
        animal = entry["source_video"].split("#")[1]
        assert entry["class_name"] == labels[animal][entry["start_frame"] + 10]
    train.main(train.get_args_parser().parse_args([
        "--manifest_path", str(tmp_path / "prepared" / "sequence_manifest.json"), "--output_dir", str(tmp_path),
        "--run_name", "r", "--classifier", "gbt", "--backbone", "none", "--use_pose", "--gbt_max_iter", "20",
        "--num_workers", "0"]))
    result = infer.main(infer.get_args_parser().parse_args([
        "--model_path", str(tmp_path / "r" / "best_model_macro_f1.pt"),
        "--video_path", str(tmp_path / "data" / "session_01DLC_synthetic.csv"), "--output_dir", str(tmp_path / "o")]))
    assert result["animal"] == "mouse0" and [r["animal"] for r in result["other_animals"]] == ["mouse1"]
    for animal in ("mouse0", "mouse1"):
        assert len(pd.read_csv(tmp_path / "o" / f"session_01.{animal}.frames.csv")) == 300
    social = pd.read_csv(result["paths"]["social"])
    assert list(social.columns[:2]) == ["animal_a", "animal_b"] and {"behavior_a", "behavior_b"} <= set(social.columns)
    # each animal's windows carry its neighbour's keypoints, and the model its social features
    assert manifest["meta"]["social"] is True
    entry = manifest["splits"]["train"][0]
    with np.load(tmp_path / "prepared" / entry["npz"]) as npz:
        recording = read_pose_file(tmp_path / "data" / entry["source_video"].split("#")[0], 0.6)
        other = 1 - int(entry["source_video"][-1])
        start = entry["start_frame"]
        np.testing.assert_allclose(npz["partner_xy_raw"], recording.xy[start:start + 20, other], atol=1e-3)


def test_social_features_of_two_animals_facing_each_other():
    from utils.features.social import SOCIAL_DIM, contact_bouts, social_features
    t, fps = 20, 10.0
    body = np.array([[20.0, 0.0], [0.0, 0.0], [-20.0, 0.0]])  # head, middle, tail along +x: 40 px long
    own = np.stack([body] * t)
    # the partner faces back towards the own animal, its centroid 100 px ahead, then 60 px (approaching)
    ahead = np.r_[np.full(10, 100.0), np.full(10, 60.0)]
    partner = np.stack([-body + [d, 0.0] for d in ahead])
    f = social_features(own, np.ones((t, 3)), partner, np.ones((t, 3)), np.tile([40.0, 400.0, 2.0], (t, 1)), fps,
                        axis=(2, 0))
    assert f.shape == (t, SOCIAL_DIM)
    np.testing.assert_allclose(f[0, :3], [1.0, 2.5, 1.5], atol=1e-6)  # present, centroids 2.5 BL, parts 60 px apart
    np.testing.assert_allclose(f[0, 3:7], [1.0, 0.0, -1.0, 0.0], atol=1e-6)  # facing it, heading opposite
    assert f[10, 7] > 1 and abs(f[0, 7]) < 1e-6 and abs(f[-1, 7]) < 1e-6  # approaching at the jump only
    alone = social_features(own, np.ones((t, 3)), np.full_like(own, np.nan), np.zeros((t, 3)),
                            np.tile([40.0, 400.0, 2.0], (t, 1)), fps, (2, 0))
    assert (alone == 0).all()
    xy = np.stack([own, partner], 1)
    bouts = contact_bouts(xy, np.ones((t, 2, 3)), ["a", "b"], (2, 0), fps, distance=0.6, min_frames=3)
    assert bouts[["start_frame", "end_frame"]].values.tolist() == [[10, 19]]
    assert bouts["closest_body_lengths"].iloc[0] == 0.5


def test_labels_per_animal_from_csv_columns_and_boris_subjects(tmp_path):
    from utils.readers.labels import load_frame_labels
    (tmp_path / "a.csv").write_text("frame,mouse0,mouse1\n0,rest,walk\n1,groom,walk\n")
    assert load_frame_labels(tmp_path / "a.csv", 2, 30, "mouse1").labels == ["walk", "walk"]
    with pytest.raises(UserError, match="no column for animal 'mouse2'"):
        load_frame_labels(tmp_path / "a.csv", 2, 30, "mouse2")
    header = "Time,Media file path,Total length,FPS,Subject,Behavior,Behavioral category,Comment,Status\n"
    rows = ["1.0,v.mp4,10,10,mouse0,groom,,,START", "2.0,v.mp4,10,10,mouse0,groom,,,STOP",
            "3.0,v.mp4,10,10,mouse1,rear,,,START", "4.0,v.mp4,10,10,mouse1,rear,,,STOP"]
    (tmp_path / "b.csv").write_text(header + "\n".join(rows) + "\n")
    one = load_frame_labels(tmp_path / "b.csv", 50, 10, "mouse1").labels
    assert one[30:40] == ["rear"] * 10 and one[10:20] == [None] * 10


def test_behaviordepot_freezing_from_real_deeplabcut_pose(shared_data, tmp_path):
    """Real data: train on the first 3000 frames, test on the last 3000, and beat BehaviorDEPOT's own freezing rule on
    the same frames per frame and per bout (bench/bench_behaviordepot.py does more)."""
    import sys
    from conftest import ROOT
    sys.path.insert(0, str(ROOT / "bench"))
    import bench_behaviordepot as bench
    recording = read_pose_file(bench.DATA / "demo1_tracking.csv")
    labels = pd.read_csv(bench.DATA / "demo1_freezing.csv")["behavior"].tolist()
    bench.write_parts(tmp_path, recording, labels)
    # decision weights from validation only: out-of-fold tuning (more fits) is tested on small files above
    model = bench.train_model(tmp_path, "gbt_speeds", 30, 5, ("--decision_folds", "0"))
    scores = bench.score(model, tmp_path / "test", tmp_path / "eval", [])
    truth = np.array([label == "freezing" for label in labels[3000:]])
    rule = bench.freezing_scores(truth, bench.depot_rule(recording, 3000, 6000))  # published parameters: 0.856 / 0.600
    assert scores["frames"] == 3000 and scores["freezing_f1"] > rule["freezing_f1"] + 0.01, (scores, rule)
    assert scores["segment_f1"] > rule["segment_f1"] + 0.1, (scores, rule)
