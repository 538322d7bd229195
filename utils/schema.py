"""Every setting of every stage, declared once: one dataclass per config section.

Each field holds its default, and in `setting(...)` its help, range or choices; the type comes from the
annotation. From these declarations come default_config.yaml (`python -m utils.schema` writes it; a test
fails when the committed file is stale), the command-line flags and --help of every script, validation of
YAML and CLI values, the dashboard's forms, and the settings recorded in checkpoints (plain dicts, asdict).
Cross-field rules live in each section's `check()`.

    python -m utils.schema            # rewrite default_config.yaml from these declarations
    python -m utils.schema --check    # exit 1 when default_config.yaml is stale
"""
from dataclasses import dataclass

from utils.config import setting
from utils.detection.detector_backends import BACKEND_CHOICES
from utils.errors import UserError
from utils.features.motion import TRACK_SMOOTH_SECONDS
from utils.features.recording_norm import MODES as NORMALISATION_MODES
from utils.data.splits import validate_ratios
from utils.results.zones import parse_zones


# where settings act (utils.config.setting: applies); a run's values come from its detector, classifier and model
NEURAL = {"classifier": ("neural",)}
TREES = {"classifier": ("gbt",)}
DENSE_KINDS = ("dense_transformer", "mstcn", "multimodal")  # model.DENSE_MODELS: per-frame networks
DENSE = {"classifier": DENSE_KINDS}
MSTCN = {"classifier": ("mstcn", "multimodal")}  # refinement stages
NETWORKS = {"classifier": ("neural",) + DENSE_KINDS}  # trained by gradient descent over epochs
NEURAL_BACKBONE = {**NEURAL, "backbone": ("frame", "video")}
FRAME_BACKBONE = {**NEURAL, "backbone": ("frame",)}
BACKBONE = {**NETWORKS, "backbone": ("frame", "video")}  # the dense kinds' backbone: frame features (use_frame_features)
TEMPORAL_HEAD = {**NEURAL, "head": ("attention", "lstm", "tcn")}
LSTM = {**NEURAL, "head": ("lstm",)}
LSTM_TCN = {**NEURAL, "head": ("lstm", "tcn")}
YOLO = {"detector": ("yolo",)}
POSE_FILE = {"detector": ("pose_file",)}
BACKGROUND = {"detector": ("background",)}
# the inputs an augmentation changes: frames, crop-pixel keypoints, body pose and box motion (frame pixels, egocentric:
# only mirroring and scale reach them)
PIXELS = {"input": ("frames",)}
ROTATION = {"input": ("frames", "crop_keypoints")}
MIRROR_SCALE = {"input": ("frames", "crop_keypoints", "body_features")}


@dataclass
class PreprocessingConfig:
    """Stage A/B: detection, cropping and windows (prepare_sequences_from_yolo.py)"""
    dataset_root: str | None = setting(None, "folder of videos: <root>/<behaviour>/**/<video> or videos with label "
                                       "files beside them", path="input", label="Videos folder", basic=True)
    dataset_layout: str = setting("auto", "auto = labelled_videos when any video has a label file beside it",
                                  choices=("auto", "class_folders", "labelled_videos"))
    output_root: str | None = setting(None, "folder for sequence_npz/, tracking/, qa_crops/, the manifest, log and "
                                      "resolved config", path=True, label="Output folder", basic=True)
    manifest_path: str | None = setting(None, "manifest file; null = <output_root>/sequence_manifest.json", path=True)
    background_label: str | None = setting(None, "labelled_videos: class given to frames no label covers; null = "
                                           "such windows are skipped")
    boris_subject: str | None = setting(None, "BORIS exports with events of several subjects: the subject whose "
                                        "events label the video (each animal of a multi-animal pose file uses its "
                                        "own name)")
    detector: str = setting("yolo", "animal localiser: yolo (weights), background (subtraction, static camera), or "
                            "pose_file (DeepLabCut, SLEAP, Anipose 3D or NWB pose files beside the videos, or alone "
                            "without "
                            "video: docs/formats.md)", registry="detectors:DETECTORS", label="Detector", basic=True)
    yolo_weights: str | None = setting(None, "Ultralytics weights: .pt, TorchScript, ONNX or an OpenVINO folder; "
                                       "nothing is downloaded", path="input", applies=YOLO,
                                       label="YOLO weights", basic=True)
    yolo_task: str = setting("auto", "auto = the task stored in the weights; detect ignores keypoints",
                             choices=("auto", "detect", "pose"), applies=YOLO)
    yolo_conf: float = setting(0.25, "minimum detection confidence", minimum=0, maximum=1, applies=YOLO)
    yolo_iou: float = setting(0.45, "NMS IoU threshold", minimum=0, maximum=1, applies=YOLO)
    yolo_imgsz: int | None = setting(None, "detector input size in px, a multiple of 32; null = the size the "
                                     "detector was trained or exported at", minimum=32, applies=YOLO)
    yolo_batch: int = setting(16, "frames per detector call", minimum=1)
    detect_every: int = setting(1, "run the detector on every Nth frame (and the last); boxes and keypoints "
                                "of the frames between are interpolated (status 'interpolated')", minimum=1)
    detector_backend: str = setting("auto", "runtime of .pt YOLO weights: exported once (cached, checked against "
                                    "PyTorch within 2 px) to openvino or onnx (CPU) or tensorrt (CUDA); auto = the "
                                    "fastest of PyTorch and the installed ones, timed once per machine; torch = as "
                                    "given; openvino_bf16 = OpenVINO in bfloat16 where the CPU has it: faster, not "
                                    "exact (never chosen by auto); openvino_int8 = backbone quantised to 8 bits "
                                    "(nncf), calibrated on the first video's frames, used where 99% of other frames "
                                    "agree with FP32 within 5% of the animal's size (auto: within 2%); not exact",
                                    choices=BACKEND_CHOICES, applies=YOLO)
    device: str = setting("auto", "auto, cpu, cuda or cuda:N", label="Device", basic=True)
    num_threads: int = setting(0, "CPU threads for torch; 0 = every core this process may use (Ultralytics would "
                               "otherwise leave one)", minimum=0)
    pose_min_likelihood: float = setting(0.6, "pose_file: points with a lower likelihood count as missing "
                                         "(0.6 is DeepLabCut's default pcutoff)", minimum=0, maximum=1,
                                         applies=POSE_FILE)
    pose_box_margin: float = setting(0.15, "pose_file: the animal's box is the extent of its keypoints grown by this "
                                     "fraction of the extent's longer side on every side", minimum=0, maximum=2,
                                     applies=POSE_FILE)
    keypoint_map: list | None = setting(None, "pose_file: the files' keypoint names as the model names them, "
                                        "'file name=name used' each (e.g. 'Nose=snout' 'Tail Base=tailbase'); "
                                        "'=neck' for a keypoint the files lack (never detected). Names equal "
                                        "ignoring case and punctuation match without it; a file's other keypoints "
                                        "are left out", applies=POSE_FILE)
    pose_fps: float | None = setting(None, "pose_file without a video: the recording's frame rate (DeepLabCut and "
                                     "SLEAP files do not store it; NWB files do); a video beside the file gives its "
                                     "own", exclusive_minimum=0, applies=POSE_FILE)
    pixels_per_cm: float | None = setting(None, "the recordings' scale in px per cm (one rig per prepared dataset); "
                                          "used with body_length_cm", exclusive_minimum=0)
    body_length_cm: float | None = setting(None, "measure pose and box-motion features in units of this many cm (e.g. "
                                           "7 for a mouse from nose to tail base) at pixels_per_cm, instead of the "
                                           "animal's own running body length: for rigs whose trackers place the "
                                           "keypoints otherwise or lose part of the body; the model then needs each "
                                           "recording's --pixels_per_cm at inference; null = the animal's body length",
                                           exclusive_minimum=0, label="Body length (cm)")
    sensor_rate: float | None = setting(None, "sensor streams without a time column (<name>.sensors.csv or .npy "
                                        "beside a recording, docs/formats.md): samples per second, the first sample "
                                        "at the first frame; null = the file's time column", exclusive_minimum=0)
    sensor_offset_s: float = setting(0.0, "sensor streams: the stream's time (s) at the recording's first frame, "
                                     "when the two clocks were not started together")
    bg_num_samples: int = setting(25, "background detector: frames sampled across the video for the median "
                                  "background", minimum=3, applies=BACKGROUND)
    bg_threshold: int = setting(25, "background detector: grey-level difference that counts as foreground",
                                minimum=1, maximum=255, applies=BACKGROUND)
    bg_min_area: int = setting(80, "background detector: smallest blob in px that counts as the animal", minimum=1,
                               applies=BACKGROUND)
    keep_last_box: bool = setting(False, "reuse the last box and keypoints through detector misses")
    max_reuse_frames: int = setting(0, "with keep_last_box: give up after this many consecutive misses; 0 = no "
                                    "limit", minimum=0, requires="preprocessing.keep_last_box")
    crop_size: int = setting(224, "side of the square crop in px", minimum=16)
    pad_ratio: float = setting(0.2, "the crop square's side is max(box w, h) * (1 + 2 * pad_ratio)", minimum=0,
                               maximum=3)
    window_size: int = setting(30, "frames per window", minimum=1, label="Frames per window", basic=True)
    window_stride: int = setting(15, "frames between the starts of consecutive windows (the last window of a "
                                 "video ends on its last frame)", minimum=1, label="Frames between windows", basic=True)
    save_sequence_npz: bool = setting(True, "write sequence_npz/<class>/<window>.npz (training needs them)")
    save_frame_crops: bool = setting(False, "write QA crops (qa_crops/<class>/<window>.jpg, centre frame with "
                                     "keypoint overlay)")
    split_strategy: str = setting("video", "video: no source video in two splits; window: leaky; file: "
                                  "--split_file", choices=("video", "window", "file"), label="Split by", basic=True)
    split_file: str | None = setting(None, "with split_strategy file: CSV `video,split` (video = path relative to "
                                     "dataset_root, or file name)", path="input")
    train_ratio: float = setting(0.7, "fraction of videos (or windows) for training", minimum=0, maximum=1)
    val_ratio: float = setting(0.15, "fraction for validation", minimum=0, maximum=1)
    test_ratio: float = setting(0.15, "fraction for testing; the three ratios sum to 1", minimum=0, maximum=1)
    seed: int = setting(42, "seed of the split")
    skip_existing: bool = setting(False, "resume: reuse videos finished by an earlier run with the same settings")

    def check(self) -> None:
        validate_ratios(self.train_ratio, self.val_ratio, self.test_ratio)
        if self.body_length_cm and not self.pixels_per_cm:
            raise UserError(f"body_length_cm {self.body_length_cm:g} measures features in cm, but pixels_per_cm is not "
                            f"set: give the recordings' scale with --pixels_per_cm N")
        if self.split_strategy == "file" and not self.split_file:
            raise UserError("split_strategy file needs split_file PATH (CSV video,split)")
        check_imgsz(self.yolo_imgsz)


def check_imgsz(imgsz, name: str = "yolo_imgsz") -> None:
    if imgsz is not None and imgsz % 32:
        raise UserError(f"{name}={imgsz} is not a multiple of 32 (the detector's stride); use "
                        f"{max(32, round(imgsz / 32) * 32)}")


@dataclass
class AugmentConfig:
    """Stage D training-time augmentation (train_behavior_lstm.py); sampled once per clip, applied to every frame"""
    hflip_prob: float = setting(0.5, "horizontal flip probability", minimum=0, maximum=1, applies=MIRROR_SCALE)
    vflip_prob: float = setting(0.5, "vertical flip probability (top-down video has no up)", minimum=0, maximum=1,
                                applies=MIRROR_SCALE)
    rotation_deg: float = setting(15.0, "maximum rotation in degrees", minimum=0, maximum=180, applies=ROTATION)
    scale_range: float = setting(0.1, "scale drawn from 1 +- this", minimum=0, maximum=0.9, applies=MIRROR_SCALE)
    translate_frac: float = setting(0.05, "maximum shift as a fraction of crop_size", minimum=0, maximum=0.5,
                                    applies=ROTATION)
    brightness: float = setting(0.2, "colour jitter: brightness", minimum=0, maximum=1, applies=PIXELS)
    contrast: float = setting(0.2, "colour jitter: contrast", minimum=0, maximum=1, applies=PIXELS)
    saturation: float = setting(0.1, "colour jitter: saturation", minimum=0, maximum=1, applies=PIXELS)
    blur_prob: float = setting(0.1, "Gaussian blur probability", minimum=0, maximum=1, applies=PIXELS)
    noise_std: float = setting(0.02, "Gaussian pixel noise (in 0..1 intensity units)", minimum=0, maximum=1,
                               applies=PIXELS)
    temporal_jitter: int = setting(2, "random shift of the clip start in frames", minimum=0)
    frame_dropout: float = setting(0.0, "probability of replacing a frame (and its keypoints) by its predecessor, in "
                                   "windows and dense models' chunks: tracks sampled more coarsely, as at another "
                                   "frame rate (bench/README.md, 'Augmenting for other trackers and frame rates')",
                                   minimum=0, maximum=0.5)
    pose_jitter: float = setting(0.0, "keypoint noise of up to this spread (drawn per window, in body lengths) added "
                                 "to the body pose inputs: other trackers' noise", minimum=0, maximum=0.5)
    speed_range: float = setting(0.1, "speeds and turning rates scaled by 1 +- this (as if the frame rate differed)",
                                 minimum=0, maximum=0.5)
    flip_idx: list | None = setting(None, "keypoint index each keypoint becomes under a horizontal flip (left/right "
                                    "pairs); null = from the manifest")

    def check(self) -> None:
        if self.flip_idx is not None and sorted(self.flip_idx) != list(range(len(self.flip_idx))):
            raise UserError(f"flip_idx={self.flip_idx} is not a permutation of 0..{len(self.flip_idx) - 1}")


@dataclass
class ModelSettings:
    """Stage C-E model (train_behavior_lstm.py); inference rebuilds the model from the checkpoint"""
    classifier: str = setting("neural", "neural: backbone and/or pose with a temporal head (torch); gbt: "
                              "gradient-boosted trees on window statistics of the pose and box-motion features "
                              "(scikit-learn, seconds to train; no frames); mstcn, dense_transformer: dense models "
                              "that label every frame of long chunks of pose and box motion, trained on every "
                              "labelled frame (no frames); multimodal: a dense model with an encoder per stream "
                              "(pose; sensor streams) fused by cross-attention, pretrained across the streams",
                              registry="classifiers:CLASSIFIERS",
                              label="Classifier", basic=True)
    gbt_max_iter: int = setting(300, "gbt: boosting rounds", minimum=1, applies=TREES)
    gbt_learning_rate: float = setting(0.1, "gbt: shrinkage of each round", exclusive_minimum=0, maximum=1,
                                       applies=TREES)
    gbt_max_features: float = setting(1.0, "gbt: share of the features each split chooses from, drawn by "
                                      "training.seed; below 1 the trees of different seeds differ, so models "
                                      "trained with other seeds can rank bouts by disagreement (suggest_review.py "
                                      "--other_results)", exclusive_minimum=0, maximum=1, applies=TREES)
    backbone: str = setting("mobilenet_v3_small", "frame or video backbone, or none (pose only)",
                            registry="model:BACKBONES", extra_choices=("none",), applies=BACKBONE, off_value="none",
                            label="Frame backbone", basic=True)
    pretrained_backbone: bool = setting(True, "start from ImageNet weights (torchvision's, or backbone_weights)",
                                        applies=BACKBONE, label="ImageNet weights", basic=True)
    backbone_weights: str | None = setting(None, "local state-dict file of the backbone's ImageNet weights "
                                           "(offline nodes), or a BehaviorScope model (best_model.pt) whose "
                                           "backbone was trained on your frames (--train_backbone): its backbone",
                                           path="input", applies=BACKBONE)
    train_backbone: bool = setting(False, "fine-tune the backbone; frozen by default and kept in eval mode",
                                   applies=NEURAL_BACKBONE)
    sequence_model: str = setting("lstm", "temporal head", registry="model:TEMPORAL_HEADS", applies=TEMPORAL_HEAD,
                                  label="Temporal head", basic=True)
    bidirectional: bool = setting(False, "bidirectional LSTM", applies=LSTM)
    attention_pool: bool = setting(False, "LSTM: learned-query attention pooling over all steps instead of the "
                                   "final state", applies=LSTM)
    temporal_attention_layers: int = setting(0, "self-attention blocks over time before the head", minimum=0,
                                             applies=TEMPORAL_HEAD)
    attention_heads: int = setting(4, "heads of every attention module", minimum=1,
                                  applies={"classifier": ("neural", "dense_transformer", "multimodal")})
    positional_encoding: str = setting("none", "positional encoding for attention over time",
                                       choices=("none", "sinusoidal", "learned"), applies=NEURAL)
    hidden_dim: int = setting(256, "temporal head width", minimum=1, applies=TEMPORAL_HEAD)
    num_layers: int = setting(1, "LSTM / TCN layers", minimum=1, applies=LSTM_TCN)
    dropout: float = setting(0.5, "dropout before the classifier (mstcn: in every layer)", minimum=0, maximum=0.95,
                            applies=NETWORKS)
    feature_dropout: float = setting(0.0, "in training, the probability of setting one pose or box-motion feature to "
                                     "its typical value (0 after scaling) for a whole window, so that no single "
                                     "feature, which a new video may shift, decides alone", minimum=0, maximum=0.9,
                                     applies=NETWORKS)
    feature_shift: float = setting(0.3, "in training, each pose and box-motion feature of a window is moved by "
                                   "one offset drawn from a normal distribution with this spread (in units of the "
                                   "scaled feature), as a new animal, floor or light moves it (bench/README.md, "
                                   "Feature shift)", minimum=0, maximum=2, applies=NETWORKS)
    use_pose: bool = setting(False, "fuse pose features with visual features", label="Use pose", basic=True)
    pose_fusion_strategy: str = setting("gated_attention", "late fusion of pose", registry="model:FUSIONS",
                                        applies=NEURAL, requires="model.use_pose")
    pose_fusion_dim: int = setting(128, "pose projection size", minimum=1, applies=NEURAL, requires="model.use_pose")
    use_box_motion: bool = setting(True, "feed box motion and size (speed, acceleration, area and aspect relative to "
                                   "the video's median) to the temporal head beside the visual and pose features; "
                                   "works with any detector", label="Use box motion", basic=True)
    use_sensors: bool = setting(True, "feed the recordings' sensor streams (IMU, EMG, photometry...: "
                                "<name>.sensors.csv beside each, docs/formats.md), per frame the mean and spread of "
                                "each channel, beside the box motion; only where the data was prepared with them",
                                label="Use sensor streams")
    motion_proj_dim: int = setting(32, "box-motion (and sensor) projection size", minimum=1, applies=NEURAL)
    input_scaling: str = setting("quantile", "how pose and box-motion inputs are scaled for the network: quantile "
                                 "(each feature through its training quantiles onto a normal scale, clipped at the "
                                 "training range: heavy tails and unseen extremes cannot dominate) or standard "
                                 "(training mean and spread)", choices=("quantile", "standard"), applies=NETWORKS)
    slowfast_alpha: int = setting(4, "SlowFast frame-rate ratio between the fast and slow pathways", minimum=1,
                                  applies=NEURAL)
    ensemble_members: int = setting(1, "neural: networks trained one after another, each from its own random "
                                    "start and batch order and kept at its own best validation epoch, sharing one "
                                    "frozen backbone; gbt: tree models, each fitted on its own draw of the training "
                                    "windows (a bootstrap within each class, with their augmented views). The model "
                                    "averages their probabilities: steadier from run to run and from retrain to "
                                    "retrain, at this many times the training time and the classifier's inference "
                                    "cost", minimum=1, maximum=10, applies={"classifier": ("neural", "gbt")})

    dense_hidden: int = setting(64, "mstcn, dense_transformer: channels of every layer", minimum=1, applies=DENSE)
    dense_layers: int = setting(10, "mstcn: dilated layers per stage (dilations 1, 2, 4, ...: a receptive field of "
                                "2^(layers+1) - 1 frames); dense_transformer: encoder layers", minimum=1, maximum=16,
                                applies=DENSE)
    dense_stages: int = setting(4, "mstcn: a prediction stage and dense_stages - 1 refinement stages, each reading "
                                "the previous one's per-frame probabilities", minimum=1, maximum=8, applies=MSTCN)
    dense_chunk: int = setting(128, "mstcn, dense_transformer: frames per chunk, in training and at inference "
                               "(overlapping by half, stitched centre-weighted: memory flat in video length)",
                               minimum=8, maximum=4096, applies=DENSE)
    use_frame_features: bool = setting(False, "mstcn, dense_transformer, multimodal: also read every frame's "
                                       "features from the frozen frame backbone (backbone, pretrained_backbone, "
                                       "backbone_weights), each frame encoded once: from the prepared crops in "
                                       "training, from the video at inference; what the crops show and the "
                                       "keypoints miss. Needs videos (not pose files alone)", applies=DENSE,
                                       label="Use frame features")

    def check(self) -> None:
        if self.classifier == "gbt":
            if not (self.use_pose or self.use_box_motion or self.use_sensors):
                raise UserError("classifier gbt needs use_pose, use_box_motion or use_sensors: it classifies their "
                                "statistics")
        elif self.classifier in DENSE_KINDS:
            if not (self.use_pose or self.use_box_motion or self.use_sensors):
                raise UserError(f"classifier {self.classifier} needs use_pose, use_box_motion or use_sensors: it "
                                f"labels frames from their features")
            if self.ensemble_members > 1:
                raise UserError(f"ensemble_members {self.ensemble_members} applies to the neural and gbt "
                                f"classifiers; set --ensemble_members 1 with classifier {self.classifier}")
            if self.use_frame_features and self.backbone == "none":
                raise UserError(f"use_frame_features needs a frame backbone, but backbone is none; pass --backbone "
                                f"mobilenet_v3_small (or another frame backbone) or drop --use_frame_features")
        elif self.backbone == "none" and not self.use_pose:
            raise UserError("backbone none needs use_pose (a pose-only model); otherwise pick a backbone")
        elif self.ensemble_members > 1 and self.backbone != "none" and self.train_backbone:
            raise UserError(f"ensemble_members {self.ensemble_members} needs a frozen backbone (the members share "
                            f"it), but train_backbone is on; drop --train_backbone or set --ensemble_members 1")


@dataclass
class TrainingConfig:
    """Training (train_behavior_lstm.py)"""
    manifest_path: str | None = setting(None, "sequence_manifest.json written by prepare_sequences_from_yolo.py",
                                        path="input", label="Prepared windows (manifest)", basic=True)
    output_dir: str = setting("runs", "runs are written to <output_dir>/<run_name>/", path=True,
                              label="Runs folder", basic=True)
    run_name: str | None = setting(None, "run folder name; null = behavior_<date>_<time>", label="Run name", basic=True)
    min_keypoint_conf: float = setting(0.0, "keypoints below this confidence count as missing in pose features "
                                       "(recorded in the checkpoint; inference applies the same)", minimum=0,
                                       maximum=1, requires="model.use_pose")
    pose_features: str = setting("body", "body: frame-pixel keypoints in body lengths and seconds, egocentric, with "
                                 "locomotion and relative size (version 4); speeds: only the body set's speeds and "
                                 "turning rates, for behaviours defined by movement such as freezing (no posture, "
                                 "so a new animal's shape or tracking confidence cannot mislead it); crop: "
                                 "crop-pixel keypoints (version 1)", choices=("body", "speeds", "crop"),
                                 requires="model.use_pose", label="Pose features", basic=True)
    track_smoothing_s: float = setting(TRACK_SMOOTH_SECONDS, "body and speeds sets: each keypoint's track is "
                                       "averaged over this many seconds (centred) before the features, so a "
                                       "tracker's frame-to-frame jitter is not read as movement; 0 = raw tracks "
                                       "(recorded in the checkpoint; bench/README.md, 'Train on one rig')",
                                       minimum=0, maximum=2, requires="model.use_pose")
    feature_normalisation: str = setting("none", "recording: every pose and box-motion feature mapped so that its "
                                         "own recording's 10th percentile is 0 and its 90th 1, in training and at "
                                         "inference: adapts to another rig, tracker or animal, but assumes each "
                                         "recording shows the animal both still and moving; models that do not see "
                                         "frames (recorded in the checkpoint; bench/README.md, 'Per-recording "
                                         "normalisation'); none: as computed", choices=NORMALISATION_MODES,
                                         label="Per-recording normalisation")
    lr: float = setting(1.0e-3, "AdamW learning rate of the head and fusion (bench/bench_schedule.py)",
                        exclusive_minimum=0, applies=NETWORKS)
    backbone_lr: float = setting(1.0e-4, "learning rate of a fine-tuned backbone", exclusive_minimum=0, applies=NEURAL)
    weight_decay: float = setting(3.0e-4, "AdamW weight decay", minimum=0, applies=NETWORKS)
    epochs: int = setting(100, "maximum epochs", minimum=1, applies=NETWORKS, label="Epochs", basic=True)
    batch_size: int = setting(8, "clips (dense models: chunks) per batch", minimum=1, applies=NETWORKS)
    patience: int = setting(15, "early stop after this many epochs without validation improvement; 0 = never",
                            minimum=0, applies=NETWORKS)
    scheduler: str = setting("plateau", "plateau watches validation loss", choices=("none", "plateau", "cosine"),
                             applies=NETWORKS)
    loss: str = setting("cross_entropy", "training loss", choices=("cross_entropy", "focal"), applies=NEURAL)
    smoothing_loss: float = setting(0.15, "mstcn, dense_transformer: weight of MS-TCN's smoothing loss (the squared "
                                    "change of each class's log-probability from one frame to the next, truncated at "
                                    "4), which discourages labels that flicker within a bout", minimum=0, maximum=10,
                                    applies=DENSE)
    masked_feature_loss: float = setting(0.0, "mstcn, dense_transformer: weight of an auxiliary task in training: "
                                         "spans of frames (mask_ratio, mask_span) have their pose and box-motion "
                                         "inputs hidden and the model predicts them beside the behaviour (the "
                                         "mouse-pain pipeline's joint keypoint prediction); 0 = off", minimum=0,
                                         maximum=10, applies=DENSE)
    mask_ratio: float = setting(0.3, "masked modelling (pretrain_pose.py, masked_feature_loss): share of each "
                                "chunk's frames whose inputs are hidden", exclusive_minimum=0, maximum=0.9,
                                applies=DENSE)
    mask_span: int = setting(8, "masked modelling: frames per hidden span (BehavERT masks spans, so a frame cannot "
                             "be read off its neighbours)", minimum=1, applies=DENSE)
    label_smoothing: float = setting(0.0, "cross-entropy label smoothing", minimum=0, maximum=0.5, applies=NEURAL)
    focal_gamma: float = setting(2.0, "focal loss gamma", minimum=0, applies=NEURAL)
    class_weighting: str = setting("none", "loss weights from training class counts",
                                   choices=("none", "inverse", "sqrt_inverse"))
    class_weight_clamp: float = setting(10.0, "largest ratio between two class weights", minimum=1)
    train_sampler: str = setting("shuffle", "weighted = class-balanced sampling", choices=("shuffle", "weighted"),
                                 applies=NEURAL)
    mixup_alpha: float = setting(0.0, "mixup Beta(alpha, alpha); 0 = off", minimum=0, applies=NEURAL)
    num_workers: int = setting(2, "data loader workers", minimum=0)
    device: str = setting("auto", "auto, cpu, cuda or cuda:N", label="Device", basic=True)
    feature_cache: bool = setting(True, "frozen frame backbone: encode each unique source frame once and train the "
                                  "head on cached features", applies=FRAME_BACKBONE)
    cache_augmented_views: int = setting(2, "with feature_cache: extra augmented views encoded per training clip "
                                         "(one is drawn per epoch)", minimum=0)
    amp: bool = setting(True, "mixed precision on CUDA (ignored on CPU)", applies=NETWORKS)
    init_from: str | None = setting(None, "start from this checkpoint's weights (same architecture and classes; "
                                    "fresh optimizer), e.g. to fine-tune on corrected labels; dense models also "
                                    "start from a pretrain_pose.py checkpoint (same features and model settings, "
                                    "any classes)", path="input", applies=NETWORKS)
    init_lr_scale: float = setting(1.0, "with init_from: the learning rate of the weights taken from it is lr times "
                                   "this (0 freezes them: only the fresh layers learn, e.g. the class outputs of a "
                                   "pretrained dense model); 1 = one rate for all", minimum=0, maximum=1,
                                   applies=NETWORKS, requires="training.init_from",
                                   label="Starting weights' rate (x lr)")
    tune_decision_weights: bool = setting(False, "after training, weight each class's probability so that the "
                                          "decision argmax(p * w) maximises validation macro-F1 (under-predicted or "
                                          "rare behaviours); stored in the checkpoint, applied at inference. Needs "
                                          "a validation split like the test data")
    decision_folds: int = setting(5, "gbt with tune_decision_weights: also tune on out-of-fold predictions of the "
                                  "training windows, cut into this many blocks of time per video (trees refitted "
                                  "without each block); 0 = validation windows only", minimum=0, applies=TREES,
                                  requires="training.tune_decision_weights")
    stop_file: str = setting("STOP", "training stops cleanly when this file appears in the run folder")
    seed: int = setting(42, "seed of weights, sampling and augmentation")

    def check(self) -> None:
        if self.loss == "focal" and self.label_smoothing:
            raise UserError("label_smoothing applies to cross_entropy only; set it to 0 with loss focal")


@dataclass
class PretrainConfig:
    """Self-supervised pretraining of a dense model (pretrain_pose.py): masked modelling of pose and box-motion
    features on recordings without labels (the multimodal kind: its cross-modal objective)"""
    pose_dir: str | None = setting(None, "folder of pose files without labels (searched recursively), read with the "
                                   "manifest's preprocessing settings (prepared with --detector pose_file); the "
                                   "manifest's own recordings are pretrained on too", path="input",
                                   label="Unlabelled pose files")

    def check(self) -> None:
        """Nothing to check across settings: the folder is checked when it is read."""


@dataclass
class InferenceConfig:
    """Inference on long videos (infer_behavior_lstm.py, benchmark_pipeline.py, batch_process_videos.py); crop,
    window and detector settings come from the checkpoint"""
    model_path: str | None = setting(None, "trained checkpoint (best_model_macro_f1.pt or best_model.pt)", path="input",
                                     label="Model", basic=True)
    video_path: str | None = setting(None, "video to classify, or a pose file (models trained on pose files: "
                                     "DeepLabCut, SLEAP, Anipose 3D, NWB)", path=True, label="Video", basic=True)
    output_dir: str | None = setting(None, "folder for the outputs; null = beside the video", path=True,
                                     label="Output folder", basic=True)
    yolo_weights: str | None = setting(None, "detector weights (any format Ultralytics loads); null = the ones "
                                       "recorded in the checkpoint", path="input", overrides="yolo_weights")
    yolo_imgsz: int | None = setting(None, "detector input size; null = the checkpoint's (another value is used "
                                     "with a warning)", minimum=32, overrides="yolo_imgsz")
    window_size: int | None = setting(None, "null = the checkpoint's (dense models: their dense_chunk); another "
                                      "value is used with a warning", minimum=1, overrides="window_size")
    window_stride: int | None = setting(None, "null = window_size // 6 (window_size // 2 for video backbones, "
                                          "which encode every window, and for dense models, which label every "
                                          "frame); smaller strides sharpen bout boundaries", minimum=1)
    keep_last_box: bool | None = setting(None, "null = as in training; reuse the last box through detector misses",
                                         overrides="keep_last_box")
    detect_every: int | None = setting(None, "run the detector on every Nth frame, interpolating between; null = "
                                       "as in training (another value is used with a warning)", minimum=1,
                                       overrides="detect_every")
    keypoint_map: list | None = setting(None, "models trained on pose files: the file's keypoint names as the model "
                                        "names them ('file name=name used', '=neck' for one it lacks); null = "
                                        "the map the model was trained with (preprocessing.keypoint_map)",
                                        overrides="keypoint_map")
    pose_fps: float | None = setting(None, "models trained on pose files: the frame rate of a pose file without "
                                     "video; null = the checkpoint's (with a warning)", exclusive_minimum=0,
                                     overrides="pose_fps")
    sensor_rate: float | None = setting(None, "models trained with sensor streams: samples per second of streams "
                                        "without a time column; null = as in training", exclusive_minimum=0,
                                        overrides="sensor_rate")
    sensor_offset_s: float | None = setting(None, "models trained with sensor streams: the stream's time (s) at the "
                                            "recording's first frame; null = as in training",
                                            overrides="sensor_offset_s")
    pixels_per_cm: float | None = setting(None, "scale of the video or pose file: kinematics are also written in cm "
                                          "(distance, speed); models trained with body_length_cm need it (their "
                                          "features are measured in cm); null = pixels only", exclusive_minimum=0,
                                          label="Pixels per cm", basic=True, overrides="pixels_per_cm", machine=True)
    zones: list | None = setting(None, "arena zones (polygons in frame pixels) reported in the workbook: time in zone, "
                                 "entries, latency, time per behaviour; YAML list of {name, polygon: [[x, y], ...]}, "
                                 "or on the command line 'name:x,y;x,y;x,y' per zone (utils/results/zones.py)",
                                 label="Zones", basic=True)
    moving_speed: float = setting(0.25, "tracking summary: the animal counts as moving while its speed (averaged over "
                                  "0.3 s) exceeds this many body lengths per second (body length: the median long "
                                  "side of its box), a threshold that holds at any resolution", exclusive_minimum=0)
    contact_distance: float = setting(0.3, "pose files with several animals: two animals are in contact while their "
                                      "nearest keypoints are closer than this many body lengths; the bouts go to "
                                      "<stem>.social.csv", exclusive_minimum=0)
    live: bool = setting(False, "play video_path as a live source at its frame rate: each window labelled as it "
                         "completes, appended to <video>.live.csv with its latency (a camera index or stream URL "
                         "is always live)")
    output_review_video: bool = setting(False, "also write <video>.review.mp4: box, keypoints and label drawn on "
                                        "every frame")
    write_in_background: bool = setting(False, "folder runs (batch_process_videos.py): write each recording's "
                                        "outputs (tables, workbook, ethogram, review video) in a background thread "
                                        "while the next recording is classified; for a detector on a GPU, which "
                                        "leaves CPU cores idle (on a 2-core CPU it made folder runs 6% slower: "
                                        "bench/README.md)")
    yolo_mode: str = setting("auto", "auto: pose only when the whole window has keypoints; bbox: never",
                             choices=("auto", "bbox", "pose"))
    require_pose: bool = setting(False, "stop at start unless the detector gives the keypoints the model was "
                                 "trained on (otherwise a pose+RGB model runs on the frames alone)")
    batch_size: int = setting(16, "windows per classifier batch", minimum=1)
    device: str = setting("auto", "auto, cpu, cuda or cuda:N", overrides="device", machine=True,
                          label="Device", basic=True)
    detector_backend: str = setting("auto", "runtime of .pt YOLO weights (see preprocessing); the result agrees "
                                    "with PyTorch within 2 px or PyTorch is used", choices=BACKEND_CHOICES,
                                    overrides="detector_backend", machine=True)
    reuse_detections: bool = setting(True, "replay the video's detections from an earlier complete run with the same "
                                     "detector, detector settings and detect_every (kept under BEHAVIORSCOPE_CACHE, "
                                     "default ~/.cache/behaviorscope, in detections/): classifying a video again "
                                     "skips the detector; off = detect afresh")
    yolo_batch: int | None = setting(None, "frames per detector and backbone call; null = 16 on a CPU, 64 on a "
                                     "GPU (larger batches keep a GPU busy)", minimum=1)
    amp: bool = setting(True, "on CUDA, run the backbone and head in half precision (autocast); no effect on CPU")
    prob_threshold: float = setting(0.0, "frames whose top probability is lower are labelled unknown", minimum=0,
                                    maximum=1)
    smoothing: str = setting("median", "per-frame label smoothing", choices=("none", "median", "majority"))
    smoothing_window: int = setting(5, "frames in the smoothing window (odd)", minimum=1)
    min_bout_s: float = setting(0.1, "bouts shorter than this many seconds are merged into their neighbours (in "
                                "seconds, so that a model means the same at any frame rate)", minimum=0,
                                label="Shortest bout (s)", basic=True)
    top_k: int = setting(3, "probabilities per frame written to the frames CSV", minimum=1)

    def check(self) -> None:
        if self.smoothing != "none" and self.smoothing_window % 2 == 0:
            raise UserError(f"smoothing_window={self.smoothing_window} must be odd (a centred window); use "
                            f"{self.smoothing_window + 1}")
        check_imgsz(self.yolo_imgsz)
        parse_zones(self.zones)  # a malformed zone stops the run before any frame


@dataclass
class DetectorTrainingConfig:
    """Training a YOLO-pose detector for your arena from labelled frames (train_detector.py)"""
    dlc_labels: list | None = setting(None, "DeepLabCut labelled frames: labeled-data folders, a project folder or "
                                      "CollectedData_<scorer>.csv/.h5 files, with their PNGs beside them",
                                      label="DeepLabCut labels", basic=True)
    yolo_data: str | None = setting(None, "an existing Ultralytics YOLO-pose data.yaml, instead of (not with) "
                                    "--dlc_labels", path="input", label="YOLO dataset", basic=True)
    pseudo_videos: list | None = setting(None, "videos whose tracker predictions (a DeepLabCut, SLEAP or NWB pose "
                                         "file beside each, or --pseudo_pose) add training frames")
    pseudo_pose: list | None = setting(None, "pose files of --pseudo_videos, in the same order; null = the pose file "
                                       "beside each video")
    pseudo_min_likelihood: float = setting(0.9, "pseudo-labels: a frame is used only when every keypoint's "
                                           "likelihood reaches this", minimum=0, maximum=1)
    pseudo_every: int = setting(3, "pseudo-labels: use every Nth qualifying frame (neighbours are near copies)",
                                minimum=1)
    pseudo_max_jump: float = setting(0.3, "pseudo-labels: skip frames where a keypoint moved more than this many "
                                     "body lengths relative to the body since the previous frame (identity or "
                                     "head/tail swaps)", exclusive_minimum=0)
    box_margin: float = setting(0.15, "training boxes: keypoint extent grown by this fraction of its longer side on "
                                "every side", minimum=0, maximum=2)
    val_fraction: float = setting(0.15, "share of the hand-labelled frames held out for validation and the "
                                  "keypoint-error report", minimum=0, maximum=0.9)
    model: str = setting("yolov8n-pose.yaml", "an Ultralytics model YAML (trained from scratch) or local .pt "
                         "weights to start from; nothing is downloaded", label="Start from", basic=True)
    epochs: int = setting(100, "training epochs", minimum=1, label="Epochs", basic=True)
    imgsz: int = setting(640, "training and evaluation image size in px, a multiple of 32", minimum=32,
                         label="Image size", basic=True)
    batch: int = setting(16, "images per training batch", minimum=1)
    patience: int = setting(30, "stop after this many epochs without a better validation fitness", minimum=1)
    output_dir: str = setting("detector_runs", "folder for dataset/, the Ultralytics run, best weights and "
                              "report.json", path=True, label="Output folder", basic=True)
    seed: int = setting(0, "seed of the train/val split and of training")
    device: str = setting("auto", "auto, cpu, cuda or cuda:N", label="Device", basic=True)
    workers: int = setting(2, "data-loading workers", minimum=0)

    def check(self) -> None:
        if self.pseudo_pose and len(self.pseudo_pose) != len(self.pseudo_videos or []):
            raise UserError(f"--pseudo_pose lists {len(self.pseudo_pose)} files for {len(self.pseudo_videos or [])} "
                            f"--pseudo_videos; give one per video, in the same order")
        if self.pseudo_videos and self.yolo_data:
            raise UserError("--pseudo_videos add frames to a converted dataset; use them with --dlc_labels")
        check_imgsz(self.imgsz, "imgsz")


@dataclass
class EmbeddingConfig:
    """Embeddings and behaviour groups found without labels (embed_behavior.py): maps of what a model sees and
    groups of frames to review and name"""
    embedding: str = setting("inputs", "what each frame is described by: inputs (the per-frame pose, box-motion and "
                             "sensor features the model is given, before any learning: B-SOiD's way; groups behaviours "
                             "best, bench/README.md) or model (the representation the model reads its labels from: a "
                             "window network's clip embedding, a dense model's per-frame features, the gbt's window "
                             "statistics)",
                             choices=("model", "inputs"), label="Embedding", basic=True)
    groups: str = setting("kmeans", "how frames are grouped: kmeans (the number of groups chosen by the silhouette "
                          "score among 2..max_groups), hdbscan (finds its own number; frames in no dense region stay "
                          "ungrouped) or none", choices=("kmeans", "hdbscan", "none"), label="Grouping", basic=True)
    max_groups: int = setting(12, "kmeans: the most groups tried", minimum=2, maximum=50, label="Most groups",
                              basic=True)
    min_group_s: float = setting(1.0, "hdbscan: the fewest seconds of frames that make a group", exclusive_minimum=0)
    smooth_s: float = setting(0.5, "each frame takes the most common group within this many seconds around it, so "
                              "groups form bouts; 0 = unsmoothed", minimum=0)
    umap: bool = setting(True, "also draw a UMAP map (umap-learn) beside the PCA one; it takes longer", label="UMAP")
    plot_points: int = setting(20000, "frames drawn in each map (an even sample of all recordings)", minimum=100)
    clips_per_group: int = setting(3, "example clips written per group (recordings with video; the longest bouts)",
                                   minimum=0)
    seed: int = setting(0, "seed of the sampling, k-means and UMAP")

    def check(self) -> None:
        """Nothing to check across settings."""


# the settings a tracking-only run reads (track_video.py, the dashboard's Track tab): the detector's and the report's
TRACKING_SETTINGS = {
    PreprocessingConfig: ("detector", "yolo_weights", "yolo_task", "yolo_conf", "yolo_iou", "yolo_imgsz", "yolo_batch",
                          "detect_every", "detector_backend", "device", "num_threads", "pose_min_likelihood",
                          "pose_box_margin", "keypoint_map", "pose_fps", "bg_num_samples", "bg_threshold", "bg_min_area",
                          "keep_last_box", "max_reuse_frames"),
    InferenceConfig: ("pixels_per_cm", "zones", "moving_speed"),
}

SECTIONS = {"preprocessing": PreprocessingConfig, "augmentation": AugmentConfig, "model": ModelSettings,
            "training": TrainingConfig, "pretraining": PretrainConfig, "inference": InferenceConfig,
            "embedding": EmbeddingConfig, "detector_training": DetectorTrainingConfig}


if __name__ == "__main__":
    from utils.config import write_default_config_cli
    write_default_config_cli()
