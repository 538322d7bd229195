"""torchrun with two CPU processes (gloo) trains one model as one process would: the same global batches (each
process half of each), gradients averaged, so the losses match a single process's to float precision without
dropout; rank 0 alone writes the run folder; a run continues with --resume across processes; a kind that trains in
one go is refused with one line."""
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from utils.checkpoint import load_checkpoint

ROOT = Path(__file__).resolve().parents[1]
TORCHRUN = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"]
TOLERANCE = 1e-3  # relative, on every epoch's training and validation loss (docs/user_guide.md says so)


def train_command(manifest: Path, out: Path, run: str, *extra) -> list:
    return [str(ROOT / "train_behavior_lstm.py"), "--manifest_path", str(manifest), "--output_dir", str(out),
            "--run_name", run, "--backbone", "none", "--use_pose", "--hidden_dim", "32", "--pose_fusion_dim", "32",
            "--lr", "3e-3", "--batch_size", "8", "--num_workers", "0", "--device", "cpu", "--dropout", "0",
            "--feature_shift", "0",
            "--patience", "0", *map(str, extra)]


def run(command: list, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=600,
                          env={**os.environ, "OMP_NUM_THREADS": "1"})


@pytest.fixture(scope="module")
def runs(pose_manifest, tmp_path_factory) -> Path:
    """One process (here, one thread as each torchrun process gets) for 3 epochs; two processes for 2, then 1 more
    after --resume."""
    import torch

    import train_behavior_lstm as train
    out = tmp_path_factory.mktemp("ddp")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        train.main(train.get_args_parser().parse_args(train_command(pose_manifest, out, "single", "--epochs", 3)[1:]))
    finally:
        torch.set_num_threads(threads)
    for extra in (("--epochs", 2), ("--epochs", 3, "--resume", out / "two" / "last_checkpoint.pt")):
        done = run([*TORCHRUN, *train_command(pose_manifest, out, "two", *extra)], out)
        assert done.returncode == 0, done.stderr[-3000:]
    return out


def test_two_processes_train_as_one_does_and_resume(runs):
    single, two = (pd.read_csv(runs / name / "metrics.csv") for name in ("single", "two"))
    assert list(two["epoch"]) == [0, 1, 2]  # two epochs, then one more after --resume
    for column in ("train_loss", "val_loss"):
        relative = ((two[column] - single[column]).abs() / single[column]).max()
        assert relative < TOLERANCE, (column, single[column].tolist(), two[column].tolist())
    assert single["train_loss"].iloc[-1] < single["train_loss"].iloc[0]  # it learned
    assert abs(two["val_macro_f1"].iloc[-1] - single["val_macro_f1"].iloc[-1]) < 0.05


def test_only_rank_0_writes_the_run_folder(runs):
    names = {p.name for p in (runs / "two").iterdir()}
    assert names == {p.name for p in (runs / "single").iterdir()}, names ^ {p.name for p in (runs / "single").iterdir()}
    assert not any(p.name.startswith("rank") for p in runs.iterdir())  # the others' temporary folders are gone
    log = (runs / "two" / "train.log").read_text()
    assert "process 0 of 2 (gloo, cpu)" in log and "process 1 of 2" not in log
    assert log.count("resumed from") == 1
    ckpt = load_checkpoint(runs / "two" / "best_model_macro_f1.pt")
    assert ckpt["class_names"] == ["groom", "rest", "turn", "walk"]
    assert not any(k.startswith("module.") for k in ckpt["model"])  # the bare model's, loadable without torchrun


def test_a_kind_that_trains_in_one_go_is_refused_under_torchrun(pose_manifest, tmp_path, monkeypatch):
    from training.engine import train_here, training_config
    from utils import distributed
    from utils.errors import UserError
    monkeypatch.setattr(distributed, "active", lambda: True)  # as in one of torchrun's processes
    cfg = training_config(*train_command(pose_manifest, tmp_path, "trees", "--classifier", "gbt")[1:])
    with pytest.raises(UserError, match="classifier gbt trains in one go, in one process; run "
                                        "train_behavior_lstm.py without torchrun"):
        train_here(cfg)


def test_the_training_order_is_the_shuffle_runs_had_before_torchrun_and_is_dealt_out_whole():
    import torch
    from torch.utils.data import DataLoader

    from training.loop import shuffled_order
    from utils import distributed
    for count, seed in ((37, 7005), (8, 0)):
        loader = DataLoader(list(range(count)), shuffle=True, batch_size=count,
                            generator=torch.Generator().manual_seed(seed))
        assert next(iter(loader)).tolist() == shuffled_order(count, seed)  # earlier runs repeat exactly
    assert distributed.shard([3, 1, 2]) == [3, 1, 2] and distributed.local_batch(16) == 16  # one process
