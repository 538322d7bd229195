"""What the dashboard remembers between sessions (recent configs and folders), in a small JSON file."""
import json
import os
from pathlib import Path

from utils.io import atomic_write_text

STATE_PATH = Path(os.environ.get("BEHAVIORSCOPE_GUI_STATE", Path.home() / ".config" / "behaviorscope" / "gui.json"))


def load_state() -> dict:
    try:
        return json.loads(STATE_PATH.read_text())
    except (OSError, ValueError):
        return {}


def remember(key: str, value: str, keep: int = 10) -> None:
    """Most recent first, without duplicates; the state file is small and rewritten each time."""
    state = load_state()
    state[key] = [value] + [v for v in state.get(key, []) if v != value][: keep - 1]
    atomic_write_text(STATE_PATH, json.dumps(state, indent=1))
