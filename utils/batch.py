"""A folder of recordings classified in shards: one process (batch_process_videos.py), a SLURM array written by hand
(--shard I/N), or an array that submitit submits and collects (--cluster slurm, or local for one machine).

Each shard takes every N-th recording of the sorted list and writes batch_summary_<I>of<N>.csv; a submitted batch
waits for its tasks and gathers their summaries into batch_summary.csv, with the tasks that failed (their error and
log). Running the same command again with --skip_existing finishes what is left."""
import logging
import re
from concurrent.futures import Future
from pathlib import Path

import pandas as pd

import inference
from utils.errors import UserError, first_line
from utils.io import atomic_write_csv
from utils.readers.pose_io import find_recordings, recording_name

log = logging.getLogger("batch")
SUMMARY_COLUMNS = ["video", "status", "frames", "bouts", "drift_score", "drift_warning", "error"]
CLUSTERS = ("none", "local", "slurm")


def parse_shard(text: str) -> tuple:
    try:
        i, n = (int(v) for v in text.split("/"))
    except ValueError:
        raise UserError(f"--shard {text!r}: expected I/N, e.g. 2/8") from None
    if not 1 <= i <= n:
        raise UserError(f"--shard {text}: I must lie in 1..N")
    return i, n


def shard_videos(videos: list, shard: tuple) -> list:
    """Every N-th video of the sorted list, starting at I-1: shards are disjoint and cover the folder."""
    i, n = shard
    return videos[i - 1::n]


def shard_summary_path(out_root: Path, shard: tuple) -> Path:
    return Path(out_root) / f"batch_summary_{shard[0]}of{shard[1]}.csv"


def classify_shard(args, shard: tuple) -> pd.DataFrame:
    """Classify shard I of N of args.input_dir into args.output_root (the model and detector loaded once); a
    failing video is a row of the summary, never the end of the shard. Writes and returns the shard's summary."""
    root, out_root = Path(args.input_dir), Path(args.output_root)
    if not root.is_dir():
        raise UserError(f"--input_dir {root} is not a folder")
    cfg, predictor = inference.load_folder_predictor(args)  # loaded once: a bad model stops before any video
    rows = []  # a row, or (video, Future of its result) while its outputs are written in the background
    with inference.BackgroundWriter() as writer:
        for video in shard_videos(find_recordings(root, predictor.detector.reads_pose_files, []), shard):
            rel = video.relative_to(root).as_posix()
            if args.skip_existing and (out_root / Path(rel).parent / f"{recording_name(video)}.behavior.csv").is_file():
                rows.append({"video": rel, "status": "skipped (exists)", "error": ""})
                continue
            try:
                result = inference.classify_in_tree(predictor, cfg, root, out_root, video,
                                                    writer if cfg.write_in_background else None)
                rows.append((rel, result) if isinstance(result, Future) else summary_row(rel, result))
            except VIDEO_ERRORS as exc:  # one bad video must not stop the batch
                rows.append(failed_row(rel, exc))
    rows = [row if isinstance(row, dict) else written_row(*row) for row in rows]
    summary = pd.DataFrame(rows, columns=SUMMARY_COLUMNS)
    out_root.mkdir(parents=True, exist_ok=True)
    atomic_write_csv(shard_summary_path(out_root, shard), summary)
    return summary


VIDEO_ERRORS = (UserError, OSError, RuntimeError, ValueError)


def summary_row(video: str, result: dict) -> dict:
    drift = result["drift"] or {}
    return {"video": video, "status": "damaged" if result["damage"] else "ok", "frames": result["frames"],
            "bouts": len(result["bouts"]), "drift_score": drift.get("drift_score"),
            "drift_warning": drift.get("drift_warning"), "error": "; ".join(result["damage"])}


def failed_row(video: str, exc: Exception) -> dict:
    log.error("%s failed: %s", video, exc)
    return {"video": video, "status": "failed", "error": first_line(exc)}


def written_row(video: str, future: Future) -> dict:
    """The summary row of a video whose outputs were written in the background (a failed write fails the video)."""
    try:
        return summary_row(video, future.result())
    except VIDEO_ERRORS as exc:
        return failed_row(video, exc)


def cluster_executor(args):
    """A submitit executor for args.cluster (local: subprocesses of this machine; slurm: an array job), with the
    resources of the --slurm_* flags; its files (scripts, logs, results) under args.cluster_folder."""
    try:
        import submitit
    except ImportError:
        raise UserError("--cluster needs submitit: pip install submitit (or use --shard I/N in your own array "
                        "job, docs/user_guide.md)") from None
    folder = Path(args.cluster_folder or Path(args.output_root) / "cluster_logs")
    executor = submitit.AutoExecutor(folder=folder / "%j", cluster=args.cluster)
    executor.update_parameters(name="behaviorscope_batch", timeout_min=args.slurm_time_min,
                               gpus_per_node=args.slurm_gpus, cpus_per_task=args.slurm_cpus, mem_gb=args.slurm_mem_gb,
                               slurm_array_parallelism=args.slurm_parallel,
                               **({"slurm_partition": args.slurm_partition} if args.slurm_partition else {}))
    return executor


def submit_shards(args) -> pd.DataFrame:
    """Submit args.jobs shards as one array (submitit), wait for every task, and gather their summaries into
    <output_root>/batch_summary.csv (a `shard` column; a task that failed as a whole: one row, status
    `task failed`, its error and log file). Returns the gathered summary."""
    root = Path(args.input_dir)
    if not root.is_dir():
        raise UserError(f"--input_dir {root} is not a folder")
    shards = [(i, args.jobs) for i in range(1, args.jobs + 1)]
    executor = cluster_executor(args)
    jobs = executor.map_array(classify_shard, [args] * len(shards), shards)
    print(f"submitted {len(jobs)} {args.cluster} task(s) (job {jobs[0].job_id.split('_')[0]}); logs in "
          f"{Path(jobs[0].paths.stdout).parent.parent}", flush=True)
    parts = []
    for shard, job in zip(shards, jobs):
        try:
            summary = job.result()
        except Exception as exc:  # submitit re-raises whatever ended the task: report it, keep the others
            error = f"{task_error(exc)} (log: {job.paths.stderr})"
            log.error("task %d/%d (job %s) failed: %s", *shard, job.job_id, error)
            summary = pd.DataFrame([{"video": "", "status": "task failed", "error": error}], columns=SUMMARY_COLUMNS)
        parts.append(summary.assign(shard=f"{shard[0]}/{shard[1]}"))
    gathered = pd.concat(parts, ignore_index=True)
    atomic_write_csv(Path(args.output_root) / "batch_summary.csv", gathered)
    return gathered



def task_error(exc: Exception) -> str:
    """The line that says why a task failed: submitit wraps the task's traceback in its own message (then the log
    paths); the traceback's last exception line ('utils.errors.UserError: ...') says why."""
    raised = [line.strip() for line in str(exc).splitlines()
              if re.match(r"\s*[\w.]*(Error|Exception|Interrupt|Exit)\b", line)]
    return raised[-1] if raised else first_line(exc)
