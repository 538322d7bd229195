"""Regenerate tests/fixtures/slowfast_r50_keys.json: parameter names and shapes of the published Kinetics-400
SlowFast-R50 (pytorchvideo's slowfast_r50), which model.py's slowfast_r50 must match to load that checkpoint.

pytorchvideo is only needed here, not at run time:
    pip install --target /tmp/ptv pytorchvideo fvcore iopath portalocker yacs tabulate termcolor
    PYTHONPATH=/tmp/ptv python tools/dump_slowfast_keys.py
"""
import json
from pathlib import Path

from pytorchvideo.models.slowfast import create_slowfast

OUT = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "slowfast_r50_keys.json"

if __name__ == "__main__":
    state = create_slowfast(model_num_class=400).state_dict()
    OUT.write_text(json.dumps({
        "source": "pytorchvideo 0.1.5 create_slowfast(model_num_class=400) (= slowfast_r50, Kinetics-400 SLOWFAST_8x8_R50)",
        "state_dict": [[k, list(v.shape)] for k, v in state.items()]}, separators=(",", ":")))
    print(f"{len(state)} entries written to {OUT}")
