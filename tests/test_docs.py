"""The docs cannot rot: every command in README.md and docs/*.md parses with its script's own parser (each flag
exists, each value has the right type and choice), and the user guide's walk-through (the block marked
`<!-- test: run -->`) runs from start to end on generated data."""
import importlib
import importlib.util
import json
import re
import shlex
from pathlib import Path

import pandas as pd
import pytest

from conftest import ROOT

DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
SKIPPED = {"pip", "pytest"}  # python3 -m pip ..., python3 -m pytest: not ours to parse


def bash_blocks(text: str) -> list:
    """(marked to run, [commands]) per ```bash block: continuation lines joined, comments and blank lines dropped."""
    blocks = []
    for match in re.finditer(r"(<!-- test: run -->\s*)?```bash\n(.*?)```", text, re.S):
        lines = match.group(2).replace("\\\n", " ").splitlines()
        commands = [line.split(" #")[0].strip() for line in lines if line.strip() and not line.lstrip().startswith("#")]
        blocks.append((bool(match.group(1)), commands))
    return blocks


def python_calls(command: str) -> list:
    """(module or script path, argv) for each `python3 ...` or `torchrun ...` in a command line (`a && b` gives
    two)."""
    calls = []
    for part in command.split("&&"):
        words = shlex.split(re.sub(r"\$\{?\w+\}?", "1", part))  # shell variables, e.g. a SLURM task id
        words = [w for w in words if not re.fullmatch(r"[A-Z_]+=\S*", w)]  # YOLO_OFFLINE=1 ...
        if words and words[0] == "torchrun":  # torchrun's own options, then the script and its flags
            script = next(i for i, w in enumerate(words) if w.endswith(".py"))
            calls.append((words[script], words[script + 1:]))
            continue
        if not words or not re.fullmatch(r"python3?", words[0]) or words[1] == "-c":
            continue
        if words[1] == "-m":
            if words[2] not in SKIPPED:
                calls.append((words[2], words[3:]))
        else:
            calls.append((words[1], words[2:]))
    return calls


def load(target: str):
    """The module of `python3 -m target` or `python3 target.py` (scripts under bench/ and tools/ too)."""
    if not target.endswith(".py"):
        return importlib.import_module(target)
    spec = importlib.util.spec_from_file_location(Path(target).stem, ROOT / target)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def every_call() -> list:
    return [(doc.name, call) for doc in DOCS for _, commands in bash_blocks(doc.read_text())
            for command in commands for call in python_calls(command)]


def test_the_docs_name_commands_of_every_script():
    scripts = {target for _, (target, _) in every_call()}
    for script in ("demo.py", "prepare_sequences_from_yolo.py", "train_behavior_lstm.py", "infer_behavior_lstm.py",
                   "benchmark_pipeline.py", "batch_process_videos.py", "behaviorscope_gui.py", "track_video.py",
                   "train_detector.py", "retrain_behavior_model.py", "pretrain_pose.py"):
        assert script in scripts, f"no command in the docs runs {script}"


@pytest.mark.parametrize("doc,call", every_call(), ids=lambda v: v if isinstance(v, str) else v[0])
def test_every_documented_command_parses(doc, call):
    target, argv = call
    parser = load(target).get_args_parser()
    try:
        parser.parse_args(argv)
    except SystemExit:
        pytest.fail(f"{doc}: `{target} {' '.join(argv)}` does not parse (see the message above)")


def test_the_walk_through_runs(tmp_path, monkeypatch):
    monkeypatch.setenv("YOLO_OFFLINE", "1")
    monkeypatch.chdir(ROOT)
    guide = (ROOT / "docs" / "user_guide.md").read_text()
    (commands,) = [commands for run, commands in bash_blocks(guide) if run]
    for command in commands:
        for target, argv in python_calls(command.replace("walkthrough/", f"{tmp_path}/")):
            module = load(target)
            module.main(module.get_args_parser().parse_args(argv))
    bouts = pd.read_csv(tmp_path / "results" / "session_00.behavior.csv")
    assert bouts["end_frame"].iloc[-1] == 159 and (tmp_path / "results" / "session_00.review.mp4").is_file()
    zones = pd.read_excel(tmp_path / "results" / "session_00.metrics.xlsx", sheet_name="zones")
    assert set(zones["zone"]) == {"centre"}
    scores = json.loads((tmp_path / "eval" / "eval_results.json").read_text())["scores"]
    assert scores["frames_evaluated"] == 160 and 0 <= scores["macro_f1"] <= 1
    assert (tmp_path / "batch" / "batch_summary_1of1.csv").is_file()
    summary = pd.read_excel(tmp_path / "tracks" / "session_00.tracking.xlsx", sheet_name="summary")
    assert summary.loc[0, "frames"] == 160 and summary.loc[0, "distance_cm"] > 0
