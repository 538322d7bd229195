"""Run inference on every video under a folder (recursive), mirroring the folder layout in the output.

Usage:
    python batch_process_videos.py --input_dir videos/ --output_root results/ --model_path best.pt
    # one job of a cluster array of 8 you write yourself (each job takes every 8th video, by sorted path):
    python batch_process_videos.py --input_dir videos/ --output_root results/ --model_path best.pt --shard 3/8
    # or let submitit submit the array to SLURM, wait for it and gather the summaries:
    python batch_process_videos.py --input_dir videos/ --output_root results/ --model_path best.pt \
        --cluster slurm --jobs 8 --slurm_partition gpu --slurm_gpus 1 --slurm_time_min 240

A failing video does not stop the batch: it is reported in the summary (batch_summary_<shard>.csv; with --cluster
also batch_summary.csv, every shard's rows and any task that failed as a whole, with its log) and the exit status
is 1 when any video or task failed. Running the same command again with --skip_existing does what is left. A video
(or pose file) that is missing frames (cut short, rows lost) is classified as far as it goes and reported
`damaged`, with what was lost in the error column, never `ok`. With --skip_existing, videos whose bouts CSV
exists are skipped.
Every inference setting of infer_behavior_lstm.py (and --config) applies to all videos; the model and
detector are loaded once per process. A model trained on pose files (detector pose_file) takes the videos with a
pose file beside them and the pose files alone.
"""
from utils.batch import CLUSTERS, classify_shard, parse_shard, submit_shards
from utils.errors import UserError, run_cli
import inference


def get_args_parser(add_help: bool = True):
    parser = inference.get_folder_args_parser(__doc__, "every video in it is classified", add_help)
    parser.add_argument("--skip_existing", action="store_true", help="skip videos whose <video>.behavior.csv exists")
    parser.add_argument("--shard", default="1/1", metavar="I/N", help="process shard I of N (1-based), e.g. 3/8")
    cluster = parser.add_argument_group("cluster (submitit)")
    cluster.add_argument("--cluster", default="none", choices=CLUSTERS,
                         help="submit --jobs shards through submitit and wait for them: slurm (an array job) or "
                              "local (processes of this machine); none = this process does --shard")
    cluster.add_argument("--jobs", type=int, default=4, help="--cluster: shards, one array task each")
    cluster.add_argument("--cluster_folder", default=None,
                         help="--cluster: submitit's scripts and logs (default <output_root>/cluster_logs)")
    cluster.add_argument("--slurm_partition", default=None, help="--cluster slurm: partition (default: SLURM's)")
    cluster.add_argument("--slurm_gpus", type=int, default=0, help="--cluster: GPUs per task")
    cluster.add_argument("--slurm_cpus", type=int, default=4, help="--cluster: CPU cores per task")
    cluster.add_argument("--slurm_mem_gb", type=float, default=16, help="--cluster: memory per task in GB")
    cluster.add_argument("--slurm_time_min", type=int, default=240, help="--cluster: time limit per task, minutes")
    cluster.add_argument("--slurm_parallel", type=int, default=64, help="--cluster slurm: tasks running at once")
    return parser


def main(args):
    if args.cluster == "none":
        summary = classify_shard(args, parse_shard(args.shard))
    else:
        if args.jobs < 1:
            raise UserError(f"--jobs {args.jobs}: give at least 1")
        if args.shard != "1/1":
            raise UserError("--shard is for an array you submit yourself; --cluster splits the folder into --jobs")
        summary = submit_shards(args)
    print(summary.to_string(index=False) if len(summary) else "no videos in this shard")
    if summary["status"].isin(["failed", "task failed"]).any():
        raise SystemExit(1)
    return summary


if __name__ == "__main__":
    run_cli(main, get_args_parser())
