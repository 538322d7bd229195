"""The dashboard's job runner without a display: progress parsing, errors, chains, graceful cancel."""
import signal
import sys
import time

import pytest

from utils.jobs import Job, error_message, format_seconds, parse_progress, script_command
from utils.logging_utils import LineProgress


def test_progress_lines_of_the_stages_parse(capsys):
    bar = LineProgress(total=200, desc="epoch 3", interval=0)
    bar.update(50)
    line = capsys.readouterr().err.strip()
    progress = parse_progress(line)
    assert (progress.desc, progress.n, progress.total) == ("epoch 3", 50, 200) and progress.fraction == 0.25
    assert progress.rate > 0 and progress.eta_seconds == pytest.approx(150 / progress.rate)
    unknown = parse_progress("PROGRESS frames: 10/? 5.0 it/s")
    assert unknown.total == 0 and unknown.fraction == 0.0 and unknown.eta_seconds is None
    assert parse_progress("INFO epoch 3: train_loss=0.2") is None


def test_error_message_and_time_format():
    assert error_message(["INFO x", "error: video not found: a.mp4", "done"]) == "video not found: a.mp4"
    assert error_message(["INFO x"]) == ""
    assert (format_seconds(75), format_seconds(3725), format_seconds(None)) == ("1:15", "1:02:05", "?")


def test_script_command_runs_the_stage_unbuffered_with_its_config():
    command = script_command("train_behavior_lstm.py", "/runs/x/gui_train.yaml")
    assert command[:2] == [sys.executable, "-u"] and command[2].endswith("train_behavior_lstm.py")
    assert command[3:] == ["--config", "/runs/x/gui_train.yaml"]


def wait(job, timeout=30.0):
    end = time.monotonic() + timeout
    while job.running and time.monotonic() < end:
        job.poll()
        time.sleep(0.02)
    job.poll(max_lines=10 ** 6)
    return job.returncode


def test_a_chain_stops_at_the_first_failure_and_logs_everything(tmp_path):
    ok = [sys.executable, "-c", "print('PROGRESS frames: 1/2 (50%) 1.0 it/s'); print('first done')"]
    bad = [sys.executable, "-c", "import sys; print('error: crop_size=8 is too small'); sys.exit(2)"]
    never = [sys.executable, "-c", "print('must not run')"]
    job = Job([ok, bad, never], tmp_path / "job.log").start()
    assert wait(job) == 2
    assert "first done" in job.lines and "must not run" not in job.lines
    assert error_message(job.lines) == "crop_size=8 is too small"
    assert "first done" in (tmp_path / "job.log").read_text()


def test_cancel_escalates_from_sigint_to_terminate(tmp_path):
    stubborn = [sys.executable, "-c", "import signal, time; signal.signal(signal.SIGINT, signal.SIG_IGN); "
                "print('ready', flush=True); time.sleep(60)"]
    job = Job([stubborn], tmp_path / "job.log", stop_file=tmp_path / "STOP", grace=0.5).start()
    while "ready" not in job.lines:
        job.poll()
        time.sleep(0.02)
    job.cancel()
    assert wait(job, timeout=10) == -15  # SIGINT ignored; SIGTERM after the grace period
    assert job.cancelled and (tmp_path / "STOP").exists()  # the stop file asks training to stop cleanly
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # as in a dashboard started with `nohup ... &`
    graceful = Job([[sys.executable, "-c", "import time; print('ready', flush=True); time.sleep(60)"]],
                   tmp_path / "job2.log", grace=60).start()  # a loaded machine can take seconds to unwind
    while "ready" not in graceful.lines:
        graceful.poll()
        time.sleep(0.02)
    graceful.cancel()
    assert wait(graceful, timeout=60) == -2  # ended by its SIGINT (KeyboardInterrupt), no escalation needed
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_a_job_runs_in_the_folder_the_dashboard_was_started_in(tmp_path, monkeypatch):
    """A relative output_dir in a form lands where the user started the dashboard, not in the repository."""
    monkeypatch.chdir(tmp_path)
    job = Job([[sys.executable, "-c", "from pathlib import Path; Path('made_here.txt').write_text('x')"]],
              tmp_path / "job.log").start()
    assert job.wait(60) == 0
    assert (tmp_path / "made_here.txt").is_file()


def test_messages_name_form_fields_not_flags():
    from utils.jobs import in_dashboard_terms
    message = ("backbone mobilenet_v3_small starts from ImageNet weights and nothing is downloaded; pass "
               "--backbone_weights PATH, or --no_pretrained_backbone, or --backbone none --use_pose; --shard stays")
    assert in_dashboard_terms(message) == (
        "backbone mobilenet_v3_small starts from ImageNet weights and nothing is downloaded; pass "
        "'backbone_weights' PATH, or 'pretrained_backbone' off, or 'backbone' none 'use_pose'; --shard stays")
