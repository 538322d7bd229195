"""Sensor streams beside recordings (utils/readers/sensors.py): read, aligned to frames by timestamp, checked at the
start, carried through preparation, training and inference; the generator's head-mounted IMU."""
import json
from pathlib import Path

import numpy as np
import pytest

from conftest import prepare_args
from utils.errors import UserError
from utils.features.sensors import sensor_feature_names, sensor_features
from utils.readers.sensors import (SensorStream, align_to_frames, dataset_channels, read_sensor_file,
                                   write_sensor_csv)
from utils.synthetic import (BEHAVIORS, IMU_CHANNELS, KEYPOINT_NAMES, RATTLE, SHAKE, make_pose_file_dataset,
                             simulate_imu, simulate_pose)


def brute_force(time, values, num_frames, fps):
    """Mean and spread of the samples in each frame's interval, one frame at a time."""
    out = np.full((num_frames, 2), np.nan)
    for i in range(num_frames):
        inside = (time >= (i - 0.5) / fps) & (time < (i + 0.5) / fps) & np.isfinite(values)
        if inside.any():
            out[i] = values[inside].mean(), values[inside].std()
    return out


def test_a_stream_is_aligned_to_frames_by_timestamp(tmp_path):
    fps, frames = 30.0, 90
    time = np.arange(0, 3.0, 1 / 200) + 1e-3  # no sample on a frame's edge, where rounding decides its side
    values = np.stack([2 * np.sin(2 * np.pi * 20 * time), time], 1)
    values[100, 0] = np.nan  # a missing sample
    path = write_sensor_csv(tmp_path / "m.sensors.csv", time, values, ["gyro", "ramp"])
    stream = read_sensor_file(path)
    assert stream.channels == ["gyro", "ramp"] and np.isnan(stream.values[100, 0])
    aligned = align_to_frames(stream, frames, fps)
    assert aligned.shape == (frames, 2, 2)
    for c in range(2):
        np.testing.assert_allclose(aligned[:, c], brute_force(stream.time, stream.values[:, c], frames, fps),
                                   atol=1e-4)
    # a 20 Hz rhythm filmed at 30 fps: its frame means alias, its spread keeps its size (amplitude 2: rms 1.41)
    assert 0.9 < np.median(aligned[1:, 0, 1]) < 1.6
    # a stream slower than the video (10 Hz) is interpolated between its samples; a gap leaves frames missing
    slow = np.arange(0, 3.05, 0.1)
    kept = (slow < 1.0) | (slow > 1.55)
    stream = SensorStream(path, slow[kept], slow[kept, None].astype(np.float32), ["ramp"])
    aligned = align_to_frames(stream, frames, fps)[:, 0]
    gap = (np.arange(frames) / fps > 0.91) & (np.arange(frames) / fps < 1.59)  # frames between samples 0.9 and 1.6
    assert np.isnan(aligned[gap, 0]).all()
    np.testing.assert_allclose(aligned[~gap, 0], np.arange(frames)[~gap] / fps, atol=1e-5)
    # the stream's clock started 0.5 s before the video's
    stream = SensorStream(path, time + 0.5, values[:, 1:2], ["ramp"])
    np.testing.assert_allclose(align_to_frames(stream, frames, fps, offset_s=0.5)[1:, 0, 0],
                               np.arange(1, frames) / fps, atol=3e-3)
    features = sensor_features(align_to_frames(SensorStream(path, slow[kept], slow[kept, None], ["ramp"]), frames, fps),
                               ["ramp"])
    assert features.shape == (frames, 3) and (features[gap] == 0).all() and (features[~gap, 2] == 1).all()
    # vectors (<name>_x/_y/_z): a length and a total spread that do not change when the sensor is turned
    raw = np.random.default_rng(0).normal(size=(5, 4, 2))
    raw[..., 1] = np.abs(raw[..., 1])
    names = ["acc_x", "acc_y", "acc_z", "emg"]
    turned = raw.copy()
    turned[:, :3, 0] = raw[:, :3, 0] @ np.array([[0, -1, 0], [1, 0, 0], [0, 0, 1.0]])  # 90 deg about z
    turned[:, [0, 1], 1] = raw[:, [1, 0], 1]
    plain, rotated = sensor_features(raw, names), sensor_features(turned, names)
    assert plain.shape == (5, 2 * 4 + 2 + 1) and sensor_feature_names(names)[8:10] == ["acc_length", "acc_spread"]
    np.testing.assert_allclose(plain[:, 8], np.linalg.norm(raw[:, :3, 0], axis=1), rtol=1e-5)
    np.testing.assert_allclose(plain[:, 8:10], rotated[:, 8:10], rtol=1e-5)


def test_bad_streams_are_named_in_one_line(tmp_path):
    time = np.arange(0, 2.0, 0.01)
    short = write_sensor_csv(tmp_path / "a.sensors.csv", time, time[:, None], ["x"])
    with pytest.raises(UserError, match=r"a.sensors.csv covers 0.000-1.990 s .* lasts 90 frames .* --sensor_offset_s"):
        align_to_frames(read_sensor_file(short), 90, 30.0, video="a.mp4")
    no_time = tmp_path / "b.sensors.csv"
    no_time.write_text("x,y\n1,2\n3,4\n5,6\n")
    with pytest.raises(UserError, match="b.sensors.csv has no 'time' column .* --sensor_rate"):
        read_sensor_file(no_time)
    assert read_sensor_file(no_time, rate=50).time[-1] == pytest.approx(0.04)
    text = tmp_path / "c.sensors.csv"
    text.write_text("time,gx\n0,1\n0.01,2\n0.02,high\n")
    with pytest.raises(UserError, match=r"c.sensors.csv row 4, column 'gx': 'high' is not a number"):
        read_sensor_file(text)
    backwards = tmp_path / "d.sensors.csv"
    backwards.write_text("time,gx\n0,1\n0.02,2\n0.01,3\n")
    with pytest.raises(UserError, match="from 0.02 to 0.01 s at sample 2; times must increase"):
        read_sensor_file(backwards)
    np.save(tmp_path / "e.sensors.npy", np.ones((300, 3), np.float32))
    stream = read_sensor_file(tmp_path / "e.sensors.npy", rate=100)
    assert stream.channels == ["ch0", "ch1", "ch2"] and stream.period == pytest.approx(0.01)
    with pytest.raises(UserError, match="no 'time' column .* --sensor_rate"):
        read_sensor_file(tmp_path / "e.sensors.npy")


def test_the_generator_imu_follows_the_motion():
    labels = ["rest"] * 60 + [SHAKE] * 15 + ["rear"] * 60 + ["turn"] * 60
    time, values = simulate_imu(labels, seed=3, mounted=False)  # the sensor's axes are the head's
    assert values.shape == (len(time), len(IMU_CHANNELS)) and time[1] - time[0] == pytest.approx(1 / 200)

    def during(first, last, readings=values):
        return readings[(time >= first / 30) & (time < last / 30)]
    # an implant sits turned and tilted on each animal: other axes, the same magnitudes
    _, mounted = simulate_imu(labels, seed=3)
    assert abs(np.linalg.norm(during(10, 55, mounted)[:, :3].mean(0)) - 9.81) < 0.3
    assert np.abs(during(10, 55, mounted)[:, :3].mean(0) - during(10, 55)[:, :3].mean(0)).max() > 0.5
    assert np.linalg.norm(during(62, 73, mounted)[:, 3:].std(0)) > 500
    rest, shake, rear, turn = during(10, 55), during(62, 73), during(100, 130), during(150, 190)
    assert abs(rest[:, 2].mean() - 9.81) < 0.3 and abs(rest[:, 0].mean()) < 0.5  # gravity along the head's z
    assert rear[:, 0].mean() > 6.0  # the nose raised: gravity moves onto the forward axis (sin 55 deg * g = 8.0)
    assert shake[:, 3].std() > 500 and rest[:, 3].std() < 10  # the roll rate of a shake, deg/s
    assert 150 < abs(turn[:, 5].mean()) < 400  # turning in place at 3.5-6 rad/s about the vertical
    # from above a shake is a rest: the same keypoints; to the IMU a tail rattle is a rest, which moves the tail tip
    np.testing.assert_array_equal(simulate_pose(["rest"] * 40, seed=4)[0], simulate_pose([SHAKE] * 40, seed=4)[0])
    np.testing.assert_array_equal(simulate_imu(["rest"] * 40, seed=4)[1], simulate_imu([RATTLE] * 40, seed=4)[1])
    rattle, rest = simulate_pose([RATTLE] * 40, seed=4)[0], simulate_pose(["rest"] * 40, seed=4)[0]
    assert rattle[:, 5].std(0).max() > 3 * rest[:, 5].std(0).max()  # the tail tip (keypoint 5)


@pytest.fixture(scope="module")
def imu_runs(tmp_path_factory):
    """Recordings with the generator's IMU, frequent shakes and tail rattles (5 labelled, 2 held out), prepared with
    their streams, and gradient-boosted models trained on pose alone, on the IMU alone and on both."""
    from prepare_sequences_from_yolo import main as prepare
    from training.engine import train, training_config
    root = tmp_path_factory.mktemp("sensors")
    often = {**dict.fromkeys(BEHAVIORS, 1.0), SHAKE: 3.0, RATTLE: 1.0}
    make_pose_file_dataset(root / "data", 5, 600, seed=11, imu=True, behaviors=often)
    make_pose_file_dataset(root / "held", 2, 600, seed=12, imu=True, behaviors=often)
    manifest = prepare(prepare_args("--dataset_root", root / "data", "--output_root", root / "prep", "--detector",
                                    "pose_file", "--pose_fps", 30, "--window_size", 30, "--window_stride", 10,
                                    "--train_ratio", 0.6, "--val_ratio", 0.4, "--test_ratio", 0))
    models = {}
    inputs = {"pose": dict(use_sensors=False), "imu": dict(use_pose=False, use_box_motion=False), "both": {}}
    for name, chosen in inputs.items():
        run = train(training_config(manifest_path=str(root / "prep" / "sequence_manifest.json"), classifier="gbt",
                                    **{"use_pose": True, **chosen}, gbt_max_iter=60, output_dir=str(root / "runs"),
                                    run_name=name, num_workers=0, device="cpu"))
        models[name] = Path(run.run_dir) / "best_model_macro_f1.pt"
    return root, manifest, models


def test_streams_are_prepared_with_the_windows(imu_runs):
    root, manifest, _ = imu_runs
    assert manifest["meta"]["sensor_channels"] == list(IMU_CHANNELS)
    entry = manifest["splits"]["train"][3]
    stream = read_sensor_file(root / "data" / f"{entry['source_video'].split('DLC')[0]}.sensors.csv")
    with np.load(root / "prep" / entry["npz"]) as npz:
        frames = npz["frame_index"]
        np.testing.assert_allclose(npz["sensor_raw"], align_to_frames(stream, 600, 30.0)[frames], atol=1e-5)


def test_the_imu_shows_what_pose_cannot(imu_runs):
    import benchmark_pipeline
    from utils.checkpoint import load_checkpoint
    root, _, models = imu_runs
    scores = {}
    for name, model in models.items():
        scores[name] = benchmark_pipeline.main(benchmark_pipeline.get_args_parser().parse_args([
            "--model_path", str(model), "--input_dir", str(root / "held"), "--output_root", str(root / f"eval_{name}"),
            "--device", "cpu"]))["scores"]
    assert load_checkpoint(models["both"])["features"]["sensor_channels"] == list(IMU_CHANNELS)
    assert load_checkpoint(models["pose"])["features"]["sensor_channels"] == []
    assert load_checkpoint(models["imu"])["features"]["num_keypoints"] == len(KEYPOINT_NAMES)
    shake = {name: s["per_class"][SHAKE]["f1"] for name, s in scores.items()}
    rattle = {name: s["per_class"][RATTLE]["f1"] for name, s in scores.items()}
    assert scores["both"]["macro_f1"] > 0.6, scores["both"]["macro_f1"]  # seven behaviours: chance is 0.14
    # shakes last 9-21 frames, under windows of 30: a window model's per-frame F1 on them is capped near the edges
    assert shake["both"] > shake["pose"] + 0.2, shake
    assert rattle["both"] > rattle["imu"] + 0.2, rattle  # the IMU takes a tail rattle for rest


def test_streams_are_checked_before_anything_is_written(imu_runs, tmp_path):
    import shutil
    import infer_behavior_lstm as infer
    from prepare_sequences_from_yolo import main as prepare
    root, _, models = imu_runs
    data = tmp_path / "data"
    shutil.copytree(root / "held", data)
    (data / "session_01.sensors.csv").unlink()
    with pytest.raises(UserError, match=r"1 recording\(s\) have a sensor stream .* but 1 do not: session_01DLC"):
        prepare(prepare_args("--dataset_root", data, "--output_root", tmp_path / "prep", "--detector", "pose_file",
                             "--pose_fps", 30))
    assert not (tmp_path / "prep" / "sequence_manifest.json").exists()

    def classify(path):
        infer.main(infer.get_args_parser().parse_args(["--model_path", str(models["both"]), "--video_path", str(path),
                                                       "--output_dir", str(tmp_path / "out"), "--device", "cpu"]))
    with pytest.raises(UserError, match=r"uses sensor streams .*session_01DLC_synthetic.csv has none beside it; add "
                                        r".*session_01.sensors.csv"):
        classify(data / "session_01DLC_synthetic.csv")
    stream = read_sensor_file(data / "session_00.sensors.csv")
    write_sensor_csv(data / "session_00.sensors.csv", stream.time, stream.values[:, :5], IMU_CHANNELS[:5])
    with pytest.raises(UserError, match=r"session_00.sensors.csv has channels .*'gyro_y'\], but .* has .*'gyro_z'\]"):
        classify(data / "session_00DLC_synthetic.csv")
    with pytest.raises(UserError, match="have channels|has channels"):
        dataset_channels([root / "held" / "session_00DLC_synthetic.csv", data / "session_00DLC_synthetic.csv"])
    assert not list((tmp_path / "out").glob("*.frames.csv"))
    assert json.loads((root / "prep" / "sequence_manifest.json").read_text())["meta"]["sensor_rate"] is None


def test_the_multimodal_model_learns_across_streams(imu_runs, tmp_path):
    """The Rats design: its cross-modal objective falls on held-out chunks without labels; fine-tuned with the
    encoders frozen (the classifier phase) they stay exactly as pretrained while the fusion learns the behaviours."""
    import torch
    import pretrain_pose
    from training.engine import train, training_config
    from utils.checkpoint import load_checkpoint
    root, _, _ = imu_runs
    manifest = root / "prep" / "sequence_manifest.json"
    small = dict(dense_hidden=16, dense_layers=3, dense_stages=1, dense_chunk=64, attention_heads=2, batch_size=8)
    result = pretrain_pose.main(pretrain_pose.get_args_parser().parse_args([str(a) for a in [
        "--manifest_path", manifest, "--classifier", "multimodal", "--use_pose", "--output_dir", tmp_path,
        "--run_name", "cross", "--device", "cpu", "--epochs", 4, "--lr", 3e-3,
        *[f for k, v in small.items() for f in (f"--{k}", v)]]]))
    losses = [row["val_loss"] for row in result.history]
    assert losses[-1] < losses[0] - 0.2, losses  # InfoNCE over up to 512 frames starts near log(512) = 6.2
    pretrained = load_checkpoint(tmp_path / "cross" / "best_model.pt")["model"]
    run = train(training_config(manifest_path=str(manifest), classifier="multimodal", use_pose=True,
                                init_from=str(tmp_path / "cross" / "best_model.pt"), init_lr_scale=0.0, epochs=12,
                                lr=3e-3, output_dir=str(tmp_path), run_name="tuned", num_workers=0, device="cpu",
                                **small))
    tuned = load_checkpoint(Path(run.run_dir) / "best_model_macro_f1.pt")["model"]
    encoders = [k for k in pretrained if k.startswith("body.encoders.")]
    assert encoders and all(torch.equal(pretrained[k], tuned[k]) for k in encoders)
    assert not torch.equal(pretrained["body.join.weight"], tuned["body.join.weight"])
    best = max(row["val_macro_f1"] for row in run.history)
    assert best > 0.45, best  # six behaviours: chance is 0.17
