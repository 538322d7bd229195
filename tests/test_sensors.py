"""Sensor streams beside recordings (utils/readers/sensors.py): read, aligned to frames by timestamp, checked at the
start, carried through preparation, training and inference; the generator's head-mounted IMU."""
import json
from pathlib import Path

import numpy as np
import pytest

from conftest import prepare_args
from utils.errors import UserError
from utils.features.sensors import sensor_features
from utils.readers.sensors import (SensorStream, align_to_frames, dataset_channels, read_sensor_file,
                                   write_sensor_csv)
from utils.synthetic import BEHAVIORS, IMU_CHANNELS, SHAKE, make_pose_file_dataset, simulate_imu, simulate_pose


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
    features = sensor_features(align_to_frames(SensorStream(path, slow[kept], slow[kept, None], ["ramp"]), frames, fps))
    assert features.shape == (frames, 3) and (features[gap] == 0).all() and (features[~gap, 2] == 1).all()


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
    time, values = simulate_imu(labels, seed=3)
    assert values.shape == (len(time), len(IMU_CHANNELS)) and time[1] - time[0] == pytest.approx(1 / 200)

    def during(first, last):
        return values[(time >= first / 30) & (time < last / 30)]
    rest, shake, rear, turn = during(10, 55), during(62, 73), during(100, 130), during(150, 190)
    assert abs(rest[:, 2].mean() - 9.81) < 0.3 and abs(rest[:, 0].mean()) < 0.5  # gravity along the head's z
    assert rear[:, 0].mean() > 6.0  # the nose raised: gravity moves onto the forward axis (sin 55 deg * g = 8.0)
    assert shake[:, 3].std() > 500 and rest[:, 3].std() < 10  # the roll rate of a shake, deg/s
    assert 150 < abs(turn[:, 5].mean()) < 400  # turning in place at 3.5-6 rad/s about the vertical
    # from above a shake is a rest: the same keypoints
    np.testing.assert_array_equal(simulate_pose(["rest"] * 40, seed=4)[0], simulate_pose([SHAKE] * 40, seed=4)[0])


@pytest.fixture(scope="module")
def imu_runs(tmp_path_factory):
    """Recordings with the generator's IMU and frequent shakes (5 labelled, 2 held out), prepared with their streams,
    and gradient-boosted models trained on pose alone and on pose with the IMU."""
    from prepare_sequences_from_yolo import main as prepare
    from training.engine import train, training_config
    root = tmp_path_factory.mktemp("sensors")
    often = {**dict.fromkeys(BEHAVIORS, 1.0), SHAKE: 3.0}
    make_pose_file_dataset(root / "data", 5, 600, seed=11, imu=True, behaviors=often)
    make_pose_file_dataset(root / "held", 2, 600, seed=12, imu=True, behaviors=often)
    manifest = prepare(prepare_args("--dataset_root", root / "data", "--output_root", root / "prep", "--detector",
                                    "pose_file", "--pose_fps", 30, "--window_size", 30, "--window_stride", 10,
                                    "--train_ratio", 0.6, "--val_ratio", 0.4, "--test_ratio", 0))
    models = {}
    for name, sensors in (("pose", False), ("both", True)):
        run = train(training_config(manifest_path=str(root / "prep" / "sequence_manifest.json"), classifier="gbt",
                                    use_pose=True, use_sensors=sensors, gbt_max_iter=60, output_dir=str(root / "runs"),
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
    shake = {name: s["per_class"][SHAKE]["f1"] for name, s in scores.items()}
    assert scores["both"]["macro_f1"] > 0.6, scores["both"]["macro_f1"]  # six behaviours: chance is 0.17
    assert shake["both"] > shake["pose"] + 0.3, shake


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
