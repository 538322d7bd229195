"""The dashboard under a display (Xvfb is started when there is none): forms from the schema, a real
preprocessing run, a training run cancelled mid-way, and a review that corrects a bout, exports it and reads
it back through preprocessing. Screenshots of every tab go to test_artifacts/ (look at them)."""
import os
import shutil
import subprocess
import time
from pathlib import Path
from tkinter import ttk

import pandas as pd
import pytest

from conftest import ROOT, prepare_args, train_args
from utils.config import section_options
from utils.schema import SECTIONS

ARTIFACTS = ROOT / "test_artifacts"
BEHAVIORS = ("walk", "rest", "groom", "turn")  # those of pose_manifest


@pytest.fixture(scope="module")
def display():
    if os.environ.get("DISPLAY"):
        yield os.environ["DISPLAY"]
        return
    xvfb = shutil.which("Xvfb")
    if xvfb is None:
        pytest.skip("no display and no Xvfb (Debian package xvfb)")
    number = 50 + os.getpid() % 400
    proc = subprocess.Popen([xvfb, f":{number}", "-screen", "0", "1366x768x24", "-nolisten", "tcp"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(100):
        if Path(f"/tmp/.X11-unix/X{number}").exists():
            break
        time.sleep(0.05)
    os.environ["DISPLAY"] = f":{number}"
    yield os.environ["DISPLAY"]
    del os.environ["DISPLAY"]
    proc.terminate()


@pytest.fixture(scope="module")
def app(display, tmp_path_factory):
    from tkinter import messagebox

    import behaviorscope_gui as gui
    from gui import state
    state.STATE_PATH = tmp_path_factory.mktemp("gui_state") / "gui.json"  # never the user's own state

    def no_dialog(title, message, **_):  # a modal dialog would block the test: fail with its text instead
        raise AssertionError(f"dialog {title!r}: {message}")
    for name in ("showerror", "showinfo", "askyesno"):
        setattr(messagebox, name, no_dialog)
    window = gui.BehaviorScopeApp()
    window.geometry("+0+0")  # its own size: what a user on a 1366x768 laptop gets
    pump(window)
    yield window
    window.destroy()


def pump(app, seconds: float = 0.3) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        app.update()
        time.sleep(0.02)


def wait_for_job(app, timeout: float = 240.0, until=None) -> None:
    end = time.monotonic() + timeout
    while app.job_tab is not None and time.monotonic() < end:
        if until is not None and until():
            return
        pump(app, 0.1)
    assert app.job_tab is None or until is not None, "the job did not finish in time"


def screenshot(app, name: str) -> Path:
    from PIL import ImageGrab
    app.event_generate("<Motion>", warp=True, x=app.winfo_width() - 5, y=5)  # no tooltip over the picture
    pump(app, 0.4)
    ARTIFACTS.mkdir(exist_ok=True)
    x, y, w, h = app.winfo_rootx(), app.winfo_rooty(), app.winfo_width(), app.winfo_height()
    path = ARTIFACTS / f"gui_{name}.png"
    ImageGrab.grab(bbox=(x, y, x + w, y + h), xdisplay=os.environ["DISPLAY"]).save(path)
    return path


def fill(tab, section: str, **values) -> None:
    for name, value in values.items():
        tab.form.set(section, name, value)


def test_every_setting_has_a_field_with_the_resolved_default_and_typing_is_validated(app):
    from utils.config import resolve_config, settings_dict
    import argparse
    tabs = {"preprocessing": "Preprocess", "augmentation": "Train", "model": "Train", "training": "Train",
            "pretraining": "Pretrain", "inference": "Inference", "embedding": "Discover",
            "detector_training": "Detector"}
    from training.recipes import FIRST, RECIPES
    for section, cls in SECTIONS.items():
        form = app.tabs[tabs[section]].form
        expected = settings_dict(resolve_config(argparse.Namespace(config=None), cls))
        if tabs[section] == "Train":  # the Train tab starts from the guide's first model, which runs offline
            expected.update({k: v for k, v in RECIPES.get(FIRST).settings.items() if k in expected})
        assert form.values()[section] == expected
        assert set(form.values()[section]) == set(section_options(cls))
    train = app.tabs["Train"]
    backbone = train.form.fields[("model", "backbone")].widget
    from model import BACKBONES
    assert list(backbone.cget("values")) == ["none", *BACKBONES.names()]  # menus come from the registry
    train.form.set("training", "lr", "-1")
    assert "lr=-1.0 is not a valid float in >0" in train.status.get()
    assert str(train.form.fields[("training", "lr")].widget.cget("style")) == "Invalid.TEntry"
    train.form.set("training", "lr", "0.001")
    assert train.form.get("training", "lr") == 0.001 and not train.status.get().startswith("\u26a0")


def test_forms_put_basic_settings_first_in_words_and_fold_the_rest(app):
    train = app.tabs["Train"]
    app.notebook.select(train)
    pump(app)
    fields = train.form.fields
    manifest, hflip = fields[("training", "manifest_path")], fields[("augmentation", "hflip_prob")]
    assert manifest.parts[0].cget("text") == "Prepared windows (manifest) *"  # in words, required marked
    assert manifest.widget.winfo_ismapped() and not hflip.widget.winfo_ismapped()  # augmentation folded away
    assert hflip.parts[0].cget("text") == "Horizontal flip probability"
    augmentation = next(f for f in train.form.folds if hflip in f.fields)
    assert augmentation.button.cget("text") == "▸ 15 advanced settings"
    augmentation.toggle()
    pump(app)
    assert hflip.widget.winfo_ismapped()
    train.form.set("augmentation", "hflip_prob", 0.1)
    assert "(1 changed from the defaults)" in augmentation.button.cget("text")
    train.form.set("augmentation", "hflip_prob", 0.5)
    screenshot(app, "train_advanced_open")
    augmentation.toggle()
    # the first thing on the tab is the recipe the guide starts with, and it runs offline
    assert train.recipe.get().endswith("(start here)") and train.form.get("model", "classifier") == "gbt"
    assert train.form.get("model", "backbone") == "none"
    train.recipe.set("LSTM on pose and box motion")
    train.recipe.event_generate("<<ComboboxSelected>>")
    assert train.form.get("model", "classifier") == "neural" and "--classifier neural" in train.recipe_why.get()
    train.apply_recipe("gbt")
    assert manifest.tip_text().startswith("training.manifest_path (--manifest_path): required\n")
    assert app.winfo_height() <= 768 - 60 and app.winfo_width() <= 1366  # title and task bars still fit
    for tab in app.tabs.values():  # nothing cut off at the window's own size (the notebook's tabs take ~30 px)
        assert tab.winfo_reqwidth() <= app.winfo_width() and tab.winfo_reqheight() <= app.winfo_height() - 30


def test_preprocess_runs_the_stage_and_shows_its_windows(app, class_folder_dataset, tiny_yolo, tmp_path):
    tab = app.tabs["Preprocess"]
    app.notebook.select(tab)
    fill(tab, "preprocessing", dataset_root=class_folder_dataset, output_root=tmp_path / "prepared",
         yolo_weights=tiny_yolo, device="cpu", crop_size=48, window_size=15, window_stride=15, train_ratio=0.5,
         val_ratio=0.5, test_ratio=0.0)
    tab.run()
    assert app.job_tab is tab and str(tab.run_button.cget("state")) == "disabled"
    wait_for_job(app)
    assert tab.job.returncode == 0, "\n".join(tab.job.lines[-20:])
    assert (tmp_path / "prepared" / "sequence_manifest.json").is_file()
    assert (tmp_path / "prepared" / "gui_preprocess.yaml").is_file()  # the tab's settings, in the run folder
    assert float(tab.progress.cget("value")) == 100 and tab.status.get().startswith("finished")
    assert len(tab.table.tree.get_children()) == 3  # walk, groom, rear
    assert app.tabs["Train"].form.get("training", "manifest_path").endswith("sequence_manifest.json")
    screenshot(app, "preprocess_finished")


def test_training_cancelled_mid_run_keeps_its_last_completed_epoch(app, pose_manifest, tmp_path):
    from utils.checkpoint import load_checkpoint
    tab = app.tabs["Train"]
    app.notebook.select(tab)
    fill(tab, "model", classifier="neural", backbone="none", use_pose=True, hidden_dim=16, pose_fusion_dim=16)
    fill(tab, "training", manifest_path=pose_manifest, output_dir=tmp_path / "runs", run_name="gui_run",
         epochs=500, patience=0, num_workers=0, device="cpu", lr=0.003)
    tab.run()
    run_dir = tmp_path / "runs" / "gui_run"
    metrics = run_dir / "metrics.csv"
    wait_for_job(app, until=lambda: metrics.is_file() and len(pd.read_csv(metrics)) >= 2)
    tab.cancel()
    wait_for_job(app, timeout=60)
    assert tab.job.cancelled and tab.status.get().startswith("cancelled")
    history = pd.read_csv(metrics)
    ckpt = load_checkpoint(run_dir / "last_checkpoint.pt")  # weights_only: a consistent, complete file
    assert ckpt["epoch"] == history["epoch"].iloc[-1] and 2 <= len(history) < 500
    assert not list(run_dir.glob(".*.tmp*")) and (run_dir / "training_curves.png").is_file()
    assert tab.curves.path == run_dir / "training_curves.png"  # shown in the tab
    screenshot(app, "train_cancelled")


@pytest.fixture(scope="module")
def predicted_video(pose_manifest, tmp_path_factory):
    """A generated labelled video classified by a small pose model: video, frames.csv, model."""
    import infer_behavior_lstm as infer
    import train_behavior_lstm as train
    from utils.synthetic import make_long_video_dataset
    work = tmp_path_factory.mktemp("review")
    train.main(train_args(pose_manifest, work / "runs", "--run_name", "pose", "--epochs", "15", "--patience", "0"))
    video, = make_long_video_dataset(work / "videos", 1, 120, seed=31, min_bout=30, max_bout=50, behaviors=BEHAVIORS)
    model = work / "runs" / "pose" / "best_model.pt"
    infer.main(infer.get_args_parser().parse_args(["--model_path", str(model), "--video_path", str(video),
                                                   "--output_dir", str(work / "out"), "--device", "cpu"]))
    return video, work / "out" / f"{video.stem}.frames.csv", model


def test_review_seek_relabel_export_and_read_back_through_preprocessing(app, predicted_video, tiny_yolo, tmp_path):
    import prepare_sequences_from_yolo as prepare
    video, frames_csv, model = predicted_video
    tab = app.tabs["Review"]
    app.notebook.select(tab)
    tab.open(video, frames_csv, model_path=model)
    pump(app)
    assert tab.session is not None and tab.session.classes == sorted(BEHAVIORS)
    assert tab.truth is not None  # the generator's label CSV beside the video was found
    start = time.perf_counter()
    tab.seek(60)
    assert time.perf_counter() - start < 1.0 and tab.frame_index == 60
    bout = tab.session.bout_at(60)
    neighbours = {tab.session.bout_at(bout.start - 1).label, tab.session.bout_at(bout.end + 1).label}
    # a label no neighbour has: relabelling to a neighbour's label would merge the two into one bout
    new_label = next(c for c in tab.session.classes if c != bout.label and c not in neighbours)
    tab.label_choice.set(new_label)
    tab.relabel()
    assert tab.session.bout_at(60).label == new_label and tab.session.bout_at(60).reviewed
    autosave = frames_csv.with_name(f"{video.stem}.review.json")
    assert autosave.is_file()  # saved at once
    tab.undo()
    assert tab.session.bout_at(60).label == bout.label
    tab.redo()
    assert tab.session.bout_at(60).label == new_label
    agreement = tab.show_agreement()
    assert agreement["frames"] == bout.frames and agreement["accuracy"] == 0.0  # over the reviewed bout only
    assert f"over the {bout.frames} frames you reviewed (of 120)" in tab.report.get("1.0", "end")
    for other in [b for b in tab.session.bouts() if not b.reviewed]:
        tab.session.confirm(other)
    agreement = tab.show_agreement()
    assert agreement["frames"] == 120 and 0 <= agreement["macro_f1"] < 1.0  # one bout now disagrees
    exported = tab.export(tmp_path / "corrected" / f"{video.stem}.csv")
    assert (tmp_path / "corrected" / video.name).exists()  # the video is linked beside its labels
    corrected = tab.session.label_names()
    screenshot(app, "review_loaded")
    manifest = prepare.main(prepare_args("--dataset_root", exported.parent, "--output_root", tmp_path / "prep",
                                         "--yolo_weights", tiny_yolo, "--device", "cpu", "--crop_size", "48",
                                         "--window_size", "16", "--window_stride", "8", "--split_strategy", "window"))
    entries = [e for split in manifest["splits"].values() for e in split]
    assert entries and all(e["class_name"] == corrected[e["start_frame"] + 8] for e in entries)


def test_review_keys_act_whatever_has_the_focus(app, predicted_video):
    """After a click in the bout list the arrows still step frames (the list does not pull the frame back to the
    bout's start), and Space plays rather than pressing the focused button."""
    video, frames_csv, model = predicted_video
    tab = app.tabs["Review"]
    app.notebook.select(tab)
    tab.open(video, frames_csv, model_path=model)
    pump(app)
    bout = tab.session.bouts()[1]
    tab.tree.selection_set(str(bout.start))  # a click on the bout in the list
    pump(app)
    assert tab.frame_index == bout.start
    tab.tree.focus_set()
    for _ in range(3):
        tab.tree.event_generate("<Right>")
        pump(app, 0.05)
    assert tab.frame_index == bout.start + 3
    merge = next(w for w in descendants(tab) if isinstance(w, ttk.Button) and w.cget("text") == "Merge next")
    merge.focus_set()
    layout = [(b.start, b.end, b.label) for b in tab.session.bouts()]
    merge.event_generate("<space>")
    pump(app, 0.1)
    assert tab.playing and [(b.start, b.end, b.label) for b in tab.session.bouts()] == layout  # played, not merged
    tab.toggle_play()


def press(tab, *keys) -> None:
    """Keys as a keyboard sends them, to the bout list (the widget that had the focus after a click there)."""
    tab.tree.focus_force()
    for key in keys:
        tab.tree.event_generate(key)
        pump(tab.app, 0.02)


def test_every_review_key_does_what_its_name_says(app, predicted_video, tmp_path):
    video, frames_csv, model = predicted_video
    tab = app.tabs["Review"]
    app.notebook.select(tab)
    # the model's predictions replaced by a known layout (they differ from machine to machine)
    table = pd.read_csv(frames_csv)
    table["label"] = ["walk"] * 30 + ["rest"] * 30 + ["walk"] * 30 + ["groom"] * 30
    designed = tmp_path / frames_csv.name
    table.to_csv(designed, index=False)
    tab.open(video, designed, model_path=model)
    pump(app)
    s = tab.session
    press(tab, "<question>")
    assert "merge the bout with the next bout of its behaviour" in tab.report.get("1.0", "end")
    first, second = s.bouts()[0], s.bouts()[1]
    press(tab, "<Down>")
    assert tab.frame_index == second.start and tab.tree.selection() == (str(second.start),)
    press(tab, "<Up>")
    assert tab.frame_index == first.start
    tab.report.focus_force()  # clicked into the report pane: it is read-only, so the keys still act
    tab.report.event_generate("<Down>")
    pump(app, 0.05)
    assert tab.frame_index == second.start and "merge the bout" in tab.report.get("1.0", "end")
    press(tab, "<Up>")
    press(tab, "<Down>", "<Left>", "<Left>", "<bracketleft>")  # the selected bout starts two frames earlier
    assert s.bout_at(second.start - 2).start == second.start - 2 and s.bout_at(second.start - 2).label == second.label
    moved = s.bout_at(second.start - 2)
    tab.seek(moved.end + 3)  # a click on the ethogram
    press(tab, "<bracketright>")  # ... and ends three frames later than it did
    assert s.bout_at(moved.end + 3).start == moved.start and s.bout_at(moved.end + 3).end == moved.end + 3
    press(tab, "<Shift-Right>")
    assert tab.frame_index == moved.end + 3 + round(tab.reader.info.fps)
    bout = s.bout_at(tab.frame_index)
    assert bout.label == "groom"
    other = "walk"  # the split-off part and the walk bout before the groom bout can then be merged
    tab.label_choice.set(other)
    if tab.frame_index == bout.start:
        press(tab, "<Right>")
    split_at = tab.frame_index
    press(tab, "s")
    assert s.bout_at(split_at).start == split_at and s.bout_at(split_at).label == other
    assert s.bout_at(split_at - 1).label == bout.label
    press(tab, "2")
    assert s.bout_at(split_at).label == s.classes[1] and s.bout_at(split_at).reviewed
    press(tab, "<Control-z>", "<Control-z>")
    assert s.bout_at(split_at).label == bout.label  # both edits undone
    press(tab, "<Control-y>")
    assert s.bout_at(split_at).label == other
    target = next(b for b in s.bouts() if not b.reviewed and b.label is not None)
    tab.seek(target.start)
    press(tab, "c")
    assert s.bout_at(target.start).reviewed and s.bout_at(target.start).label == target.label
    press(tab, "<Delete>")
    assert s.bout_at(target.start).label is None
    a, b = s.bout_at(70), s.bout_at(100)  # walk, groom in between, walk
    assert a.label == b.label == "walk" and b.index == a.index + 2
    tab.seek(a.start)
    press(tab, "m")
    assert s.bout_at(a.start).end == b.end and s.bout_at(a.start).label == a.label
    press(tab, "<plus>")
    assert tab.speed.get() == "2"
    press(tab, "<minus>", "<minus>")
    assert tab.speed.get() == "0.5"
    tab.label_choice.focus_set()  # a readonly dropdown: no typing, the keys still act
    tab.label_choice.event_generate("<Right>")
    pump(app, 0.05)
    assert tab.frame_index == a.start + 1
    screenshot(app, "review_keys")


def descendants(widget) -> list:
    return [child for w in widget.winfo_children() for child in (w, *descendants(w))]


def test_inference_and_evaluate_tabs_run_and_show_their_results(app, predicted_video, tmp_path):
    video, _, model = predicted_video
    infer_tab = app.tabs["Inference"]
    app.notebook.select(infer_tab)
    infer_tab.mode.set("video")
    fill(infer_tab, "inference", model_path=model, video_path=video, output_dir=tmp_path / "one", device="cpu")
    infer_tab.run()
    wait_for_job(app)
    assert infer_tab.job.returncode == 0, "\n".join(infer_tab.job.lines[-20:])
    behavior = pd.read_csv(tmp_path / "one" / f"{video.stem}.behavior.csv")
    assert len(infer_tab.bouts.tree.get_children()) == len(behavior) > 0
    assert infer_tab.ethogram.path == tmp_path / "one" / f"{video.stem}.ethogram.png"
    screenshot(app, "inference_finished")

    evaluate = app.tabs["Evaluate"]
    app.notebook.select(evaluate)
    fill(evaluate, "inference", model_path=model, device="cpu")
    evaluate.input_dir.set(str(video.parent))
    evaluate.output_root.set(str(tmp_path / "eval"))
    evaluate.run()
    wait_for_job(app)
    assert evaluate.job.returncode == 0, "\n".join(evaluate.job.lines[-20:])
    rows = [evaluate.per_class.tree.item(i)["values"] for i in evaluate.per_class.tree.get_children()]
    assert [r[0] for r in rows] == [*sorted(BEHAVIORS), "macro / all"]
    assert evaluate.confusion.path == tmp_path / "eval" / "confusion_matrix.png"
    assert evaluate.ethogram.path is not None and evaluate.ethogram.path.name.endswith(".truth_vs_prediction.png")
    screenshot(app, "evaluate_finished")


def test_track_tab_runs_tracking_only_with_zones(app, predicted_video, tiny_yolo, tmp_path):
    video, _, _ = predicted_video
    tab = app.tabs["Track"]
    app.notebook.select(tab)
    assert ("preprocessing", "crop_size") not in tab.form.fields  # only the detector's and the report's settings
    fill(tab, "preprocessing", detector="yolo", yolo_weights=tiny_yolo, yolo_imgsz=320, device="cpu")
    fill(tab, "inference", pixels_per_cm=10.0, zones=["left:0,0;320,0;320,480;0,480"])
    tab.video_path.set(str(video))
    tab.output_dir.set(str(tmp_path / "track"))
    tab.run()
    wait_for_job(app)
    assert tab.job.returncode == 0, "\n".join(tab.job.lines[-20:])
    assert tab.trajectory.path == tmp_path / "track" / f"{video.stem}.trajectory.png"
    summary = dict(tab.summary.tree.item(i)["values"][:2] for i in tab.summary.tree.get_children())
    assert float(summary["frames"]) == 120 and float(summary["distance_cm"]) > 0
    screenshot(app, "track_finished")


def test_detector_tab_trains_reports_and_hands_its_weights_to_preprocess(app, tmp_path):
    from test_detector_training import dlc_table, labelled_frames
    folder = tmp_path / "labeled-data" / "v1"
    dlc_table(folder, labelled_frames(folder, 8)).to_csv(folder / "CollectedData_me.csv")
    tab = app.tabs["Detector"]
    app.notebook.select(tab)
    fill(tab, "detector_training", dlc_labels=[str(tmp_path / "labeled-data")], output_dir=tmp_path / "det",
         epochs=1, imgsz=64, batch=4, device="cpu", workers=0, val_fraction=0.25)
    tab.run()
    wait_for_job(app)
    assert tab.job.returncode == 0, "\n".join(tab.job.lines[-20:])
    rows = dict(tab.report.tree.item(i)["values"][:2] for i in tab.report.tree.get_children())
    assert int(rows["animals"]) == 2 and "keypoint_error_px_median" in rows
    assert app.tabs["Preprocess"].form.get("preprocessing", "yolo_weights") == str(tmp_path / "det" / "best.pt")
    screenshot(app, "detector_finished")


def test_a_finished_pretraining_is_where_training_starts(app, tmp_path):
    tab = app.tabs["Pretrain"]
    assert tab.form.get("model", "classifier") == "mstcn" and tab.form.get("model", "use_pose") is True
    fill(tab, "training", output_dir=str(tmp_path), run_name="pre")
    fill(tab, "model", dense_hidden=48, dense_chunk=96)
    (tmp_path / "pre").mkdir()
    (tmp_path / "pre" / "best_model.pt").write_bytes(b"")
    tab.show_results(tab.form.values(), finished=True)
    train = app.tabs["Train"].form
    assert train.get("training", "init_from") == str(tmp_path / "pre" / "best_model.pt")
    assert (train.get("model", "classifier"), train.get("model", "dense_hidden"), train.get("model", "dense_chunk")) \
        == ("mstcn", 48, 96)
    assert train.get("training", "init_lr_scale") == 0.1
    assert app.tabs["Train"].recipe_why.get() == (f"fine-tunes the pretrained mstcn of {tmp_path / 'pre'}, its "
                                                  f"pretrained layers at 0.1 x the learning rate")
    assert tab.stop_file(tab.form.values()) == tmp_path / "pre" / "STOP"


def test_discover_maps_groups_and_the_review_tab_names_them(app, predicted_video, tmp_path):
    video, _, model = predicted_video
    tab = app.tabs["Discover"]
    app.notebook.select(tab)
    tab.form.set("inference", "model_path", str(model))
    tab.form.set("inference", "device", "cpu")
    tab.form.set("embedding", "umap", False)
    tab.form.set("embedding", "max_groups", 4)
    tab.input_dir.set(str(video.parent))
    tab.output_root.set(str(tmp_path / "emb"))
    tab.run()
    wait_for_job(app)
    assert tab.job.returncode == 0, "\n".join(tab.job.lines[-20:])
    assert tab.map.path == tmp_path / "emb" / "embedding_pca.png" and len(tab.groups.frame) >= 2
    screenshot(app, "discover_map")
    review = app.tabs["Review"]
    app.notebook.select(review)
    review.open_suggestion()
    pump(app)
    groups = sorted(tab.groups.frame["group"])
    assert review.session.classes == [g for g in groups if g != "unknown"] and len(review.session) == 120
    bout = max(review.session.bouts(), key=lambda b: b.frames)
    review.add_class("sniff")
    review.seek(bout.start)
    review.relabel()
    assert review.session.bout_at(bout.start).label == "sniff"
    screenshot(app, "discover_review")
    exported = pd.read_csv(review.export(tmp_path / "named" / f"{video.stem}.csv"))
    assert (exported.set_index("frame").loc[bout.start:bout.end, "behavior"] == "sniff").all()


def test_screenshots_of_every_tab(app):
    for name in ("Preprocess", "Train", "Pretrain", "Inference", "Evaluate", "Discover", "Track", "Detector", "Review"):
        app.notebook.select(app.tabs[name])
        assert screenshot(app, f"tab_{name.lower()}").stat().st_size > 10_000


def test_review_flags_open_a_result_and_name_a_missing_file(predicted_video, tmp_path):
    import behaviorscope_gui as gui
    video, frames_csv, model = predicted_video
    args = gui.get_args_parser().parse_args(["--review_video", str(video), "--review_frames", str(frames_csv),
                                            "--review_model", str(model)])
    assert gui.review_paths(args) == (video, frames_csv)
    args.review_frames = None  # default: <stem>.frames.csv beside the video, which is not there
    with pytest.raises(gui.UserError, match=f"{video.stem}.frames.csv does not exist"):
        gui.review_paths(args)


def test_a_retrained_model_is_used_only_when_accepted_and_a_worse_one_says_so(app, tmp_path, monkeypatch):
    import json

    from training.retrain import RetrainPlan
    tab = app.tabs["Review"]
    app.notebook.select(tab)
    plan = RetrainPlan(tmp_path, "r1", tmp_path / "p.yaml", tmp_path / "t.yaml", {}, tmp_path / "current.pt",
                       tmp_path / "manifest.json")
    plan.run_dir.mkdir(parents=True)
    scores = {"macro_f1": 0.9, "accuracy": 0.9, "per_class_f1": {"rest": 0.95, "walk": 0.85},
              "support": {"rest": 10, "walk": 8}}
    worse = {**scores, "macro_f1": 0.7, "per_class_f1": {"rest": 0.9, "walk": 0.5}}
    plan.comparison.write_text(json.dumps({"groups": {"all held-out": {"windows": 18, "current": scores, "new": worse}},
                                           "macro_f1_change": -0.2, "verdict": "worse",
                                           "recommended": "current"}))
    tab.plan, tab.paths["model"] = plan, str(tmp_path / "current.pt")
    questions = []
    monkeypatch.setattr(tab, "ask_yes_no", lambda title, question: questions.append(question) or False)
    tab.show_retrain_result()
    assert "WORSE than the current one" in questions[-1] and "-0.200" in questions[-1]
    assert "Recommended: keep the current model" in questions[-1]
    assert tab.paths["model"] == str(tmp_path / "current.pt")  # rejected: nothing replaced
    report = tab.report.get("1.0", "end")
    assert "the new model is WORSE (-0.200)" in report and "walk" in report and "0.500" in report
    monkeypatch.setattr(tab, "ask_yes_no", lambda title, question: True)
    tab.show_retrain_result()
    assert tab.paths["model"] == str(plan.new_model)
    assert app.tabs["Inference"].form.get("inference", "model_path") == str(plan.new_model)


def test_the_review_queue_is_worked_through_with_n(app, predicted_video, tmp_path):
    import suggest_review
    video, frames_csv, model = predicted_video
    queue = suggest_review.main(suggest_review.get_args_parser().parse_args([
        "--results_dir", str(frames_csv.parent), "--count", "3", "--output", str(tmp_path / "queue.csv")]))
    tab = app.tabs["Review"]
    app.notebook.select(tab)
    tab.close()
    tab.session, tab.paths["frames"] = None, None  # nothing open yet: n opens the queue's recording
    tab.open_queue(tmp_path / "queue.csv")
    assert 2 <= len(queue) <= 3  # at most --count, as many as the recording's bouts worth a look
    for i in range(2):
        press(tab, "n")
        assert tab.paths["video"] == str(video) and tab.frame_index == queue.loc[i, "start_frame"]
        assert f"queue {i + 1}/{len(queue)}" in tab.status.get()
    assert tab.tree.selection() == (str(tab.current_bout().start),)


def test_review_three_bouts_by_keyboard_retrain_compare_reject_and_accept(app, predicted_video, monkeypatch):
    """The whole loop in the real window: keys review three bouts (labels from the truth), the retrain job runs
    (retrain_behavior_model.py), both models' held-out scores are shown, and the new model replaces the current one
    only when accepted."""
    import hashlib
    from collections import Counter
    video, frames_csv, model = predicted_video
    tab = app.tabs["Review"]
    app.notebook.select(tab)
    frames_csv.with_name(f"{video.stem}.review.json").unlink(missing_ok=True)
    tab.open(video, frames_csv, model_path=model)
    pump(app)
    for _ in range(3):
        press(tab, "<Down>")
        bout = tab.current_bout()
        truth = Counter(tab.truth[bout.start:bout.end + 1]).most_common(1)[0][0]
        press(tab, str(tab.session.classes.index(truth) + 1))
        labels = tab.session.label_names()[bout.start:bout.end + 1]
        assert tab.session.checked()[bout.start:bout.end + 1].all() and set(labels) == {truth}
    assert tab.session.checked().sum() >= 3
    before = hashlib.sha256(model.read_bytes()).hexdigest()
    answers = []
    monkeypatch.setattr(tab, "ask_yes_no", lambda title, question: answers.append(question) or False)
    retrain = next(w for w in descendants(tab)
                   if isinstance(w, ttk.Button) and w.cget("text") == "Retrain with corrections")
    retrain.invoke()
    assert app.job_tab is tab and str(tab.cancel_button.cget("state")) == "normal"
    wait_for_job(app, timeout=400)
    assert tab.view.succeeded, tab.report.get("1.0", "end")[-2000:]
    report = tab.report.get("1.0", "end")
    assert "held-out windows (the same for both)   current    new" in report and "macro-F1" in report
    assert answers and "Use it from now on?" in answers[0]  # asked, and told no
    assert tab.paths["model"] == str(model) and hashlib.sha256(model.read_bytes()).hexdigest() == before
    assert app.tabs["Inference"].form.get("inference", "model_path") != str(tab.plan.new_model)
    assert tab.plan.new_model.is_file() and tab.plan.comparison.with_suffix(".csv").is_file()  # the report stays
    screenshot(app, "review_retrained")
    monkeypatch.setattr(tab, "ask_yes_no", lambda title, question: True)
    tab.show_retrain_result()  # the same comparison, accepted this time
    assert tab.paths["model"] == str(tab.plan.new_model)
    assert app.tabs["Inference"].form.get("inference", "model_path") == str(tab.plan.new_model)


def test_a_missing_input_is_reported_at_once_and_nothing_is_written(app, tmp_path):
    tab = app.tabs["Train"]
    app.notebook.select(tab)
    fill(tab, "training", manifest_path=str(tmp_path / "nowhere" / "sequence_manifest.json"),
         output_dir=str(tmp_path / "runs"), run_name="r")
    start = time.perf_counter()
    message = r"dialog 'Cannot run': Prepared windows \(manifest\) \(manifest_path\): .*nowhere.* does not exist"
    with pytest.raises(AssertionError, match=message):
        tab.run()
    assert time.perf_counter() - start < 1.0 and app.job_tab is None
    assert not (tmp_path / "runs").exists()  # no run folder, no config written


def test_a_jobs_warnings_stay_in_view_until_the_next_run(app, tmp_path):
    """A drift warning used to scroll away in the log while the results tab opened over it."""
    import sys

    from utils.jobs import Job
    tab = app.tabs["Inference"]
    app.notebook.select(tab)
    warning = "v.mp4 looks unlike the training videos: 40% of its windows are farther from the training data"
    script = (f"print('INFO start'); print('WARNING {warning}'); print('WARNING \u26a0\ufe0f half is deprecated'); "
              f"[print('INFO line', i) for i in range(200)]")
    tab.view.start(Job([[sys.executable, "-c", script]], tmp_path / "job.log").start())
    while not tab.view.poll():
        pump(app, 0.05)
    tab.outputs.select(tab.ethogram)  # the results open, as after a real run
    pump(app)
    assert tab.view.banner.winfo_ismapped() and warning in tab.view.banner.cget("text")
    assert "1 warning(s), below" in tab.status.get()  # Ultralytics' notices about itself stay in the log
    screenshot(app, "inference_warning")
    tab.view.start(Job([[sys.executable, "-c", "print('INFO quiet')"]], tmp_path / "job2.log").start())
    while not tab.view.poll():
        pump(app, 0.05)
    pump(app)
    assert not tab.view.banner.winfo_ismapped()


def test_a_tooltip_is_never_left_standing(app):
    """<Enter> twice without <Leave> (a dropdown closed with Escape) used to leave an orphaned tip."""
    import tkinter as tk
    tab = app.tabs["Train"]
    app.notebook.select(tab)
    field = tab.form.fields[("model", "classifier")].widget  # a dropdown; its help is a tooltip

    def tips():
        return [w for w in descendants(field) if isinstance(w, tk.Toplevel) and w.winfo_exists()]
    for _ in range(2):
        field.event_generate("<Enter>")
    pump(app, 0.7)
    assert len(tips()) == 1  # one tip, not two
    field.focus_force()
    field.event_generate("<KeyPress-Escape>")
    pump(app, 0.1)
    assert tips() == []


def test_forms_start_from_their_last_run(app, tmp_path):
    """A run remembers its settings (gui_<tab>.yaml); the next session's tab starts from them."""
    from gui.state import remember
    from gui.widgets import write_config
    tab = app.tabs["Train"]
    values = tab.form.values()
    values["training"]["epochs"] = 7
    write_config(tmp_path / "gui_train.yaml", values)
    remember(tab.last_run_key, str(tmp_path / "gui_train.yaml"), keep=1)
    before = tab.form.get("training", "epochs")
    app.restore_last_runs()  # what a new session does at start
    try:
        assert tab.form.get("training", "epochs") == 7
    finally:
        tab.form.set("training", "epochs", before)
