"""Deep ensembles: each member trained as one network would be, one after another in member_<i>/, then the run's
best_model*.pt average the members, each at its own best epoch (docs/formats.md, section 5)."""
import logging
from dataclasses import replace
from pathlib import Path

import pandas as pd

from model import build_model
from training.loop import evaluate_dataset, fit_network, history_of
from training.run import TrainingRun, checkpoint_fields, seed_everything, write_evaluation
from utils.checkpoint import load_checkpoint, save_checkpoint
from utils.errors import UserError
from utils.io import atomic_write_csv, ensure_dir
from utils.results.plots import plot_training_curves

log = logging.getLogger("train")
MEMBER_DIR = "member_{}"


def fit_members(ensemble, run: TrainingRun, weights) -> tuple:
    """Train each member in run_dir/member_<i>/ (its own seed for batch order and augmentation, its own early
    stopping and best epochs; a member's checkpoints are models on their own), then write the run's
    best_model*.pt. A resumed run continues the member whose last_checkpoint.pt it names; earlier members are
    done. A stop ends the ensemble with the members trained so far. Returns (history with a member column, the
    ensemble of the members trained)."""
    first = resumed_member(run.resume, run.run_dir) if run.resume else 0
    count, history = len(ensemble.members), []
    for i in range(first):
        history += member_history(run.run_dir, i)
    for i in range(first, count):
        member_dir = ensure_dir(run.run_dir / MEMBER_DIR.format(i), "ensemble member folder")
        member = run.for_member(i, member_dir, run.resume if i == first else None)
        net = ensemble.members[i]
        if net.backbone is None and ensemble.backbone is not None:
            net.backbone = ensemble.backbone  # borrowed for training: frames are encoded by the shared backbone
        seed_everything(member.cfg.training.seed)
        log.info("ensemble member %d of %d (seed %d) in %s", i + 1, count, member.cfg.training.seed, member_dir)
        fit_network(net, member, weights, desc=f"member {i + 1}/{count} epoch")
        if i:
            net.backbone = None
        history += member_history(run.run_dir, i)
        if run.stop:
            count = i + 1 if (member_dir / "best_model_macro_f1.pt").is_file() else i
            log.warning("stopped during ensemble member %d: the model averages the %d member(s) trained so far",
                        i + 1, count)
            break
    if history:
        atomic_write_csv(run.run_dir / "metrics.csv", pd.DataFrame(history))
        plot_training_curves(history, run.run_dir / "training_curves.png")
    if not count:
        return [], ensemble
    if count != len(ensemble.members):
        ensemble = build_model(replace(run.mcfg, ensemble_members=count)).to(run.device)
    save_ensemble_bests(ensemble, count, run, weights)
    return history, ensemble


def resumed_member(path, run_dir: Path) -> int:
    """Index of the member whose last_checkpoint.pt an ensemble run resumes."""
    folder = Path(path).resolve().parent
    for i in range(len(list(run_dir.glob(MEMBER_DIR.format("*"))))):
        if folder == (run_dir / MEMBER_DIR.format(i)).resolve():
            return i
    raise UserError(f"--resume {path}: an ensemble resumes from one member's checkpoint, "
                    f"{run_dir / MEMBER_DIR.format('<i>') / 'last_checkpoint.pt'} (the member that was training)")


def member_history(run_dir: Path, i: int) -> list:
    return [dict(row, member=i) for row in history_of(run_dir / MEMBER_DIR.format(i) / "metrics.csv")]


def save_ensemble_bests(model, count: int, run: TrainingRun, weights) -> None:
    """best_model.pt and best_model_macro_f1.pt of the run: every member at its own best epoch for that metric,
    averaged; evaluated on validation as one model (the evaluation files, best_metric)."""
    for metric, name in (("acc", "best_model.pt"), ("macro_f1", "best_model_macro_f1.pt")):
        members = [load_checkpoint(run.run_dir / MEMBER_DIR.format(i) / name) for i in range(count)]
        states = [{k: v for k, v in m["model"].items() if not (i and k.startswith("backbone."))}
                  for i, m in enumerate(members)]
        model.load_state_dict(states[0] if count == 1 else
                              {f"members.{i}.{k}": v for i, state in enumerate(states) for k, v in state.items()})
        best = None
        if run.has_validation:
            result = evaluate_dataset(model, run.datasets["val"], weights, run)
            best = {"acc": result["acc"], "macro_f1": result["macro_f1"]}
            write_evaluation(run.run_dir, f"best_{metric}", result, run.class_names)
        epochs = [m["epoch"] for m in members]
        saved = checkpoint_fields(run, model.state_dict(), max(epochs), best, mcfg=model.cfg)
        save_checkpoint(run.run_dir / name, selection=f"{count} ensemble members, each at its {members[0]['selection']}"
                        f" (epochs {epochs})", **saved)
        log.info("%s: %d members at epochs %s%s", name, count, epochs,
                 f", validation {metric} {best[metric]:.4f}" if best else "")
