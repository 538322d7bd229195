"""Starting points for training: the models the user guide compares, by name, as the settings they change from the
schema's defaults. The dashboard's Train tab starts from FIRST (it runs offline, in seconds, on any machine) and
offers the others in its "start from" menu; demo.py trains them under the same names.

    RECIPES.get("gbt").settings   # {"classifier": "gbt", "backbone": "none", "use_pose": True}
    RECIPES.get("gbt").flags()    # ["--classifier", "gbt", "--backbone", "none", "--use_pose"]
"""
from dataclasses import dataclass

from utils.registry import Registry

RECIPES = Registry("training recipe")
FIRST = "gbt"  # the guide's first model
# fine-tuning a pretrain_pose.py model: its pretrained layers learn at a tenth of the rate (--init_lr_scale); at 10%
# of the labels it beat the full rate in 3 of 3 seeds (bench/README.md, "Label efficiency")
PRETRAINED_LR_SCALE = 0.1


@dataclass(frozen=True)
class Recipe:
    title: str  # as the dashboard's menu shows it
    settings: dict  # {setting name: value} of the augmentation, model and training sections
    why: str

    def flags(self) -> list:
        """The settings in command-line spelling (booleans --name / --no-name)."""
        out = []
        for name, value in self.settings.items():
            out += [f"--{name}" if value else f"--no-{name}"] if isinstance(value, bool) else [f"--{name}", str(value)]
        return out


def recipe_titles() -> dict:
    """{menu title: recipe name}, the first recipe first."""
    names = [FIRST] + [n for n in RECIPES.names() if n != FIRST]
    return {RECIPES.get(n).title: n for n in names}


POSE_ONLY = {"backbone": "none", "use_pose": True}
# frames learnt from scratch: no ImageNet weights are downloaded (give backbone_weights to start from them)
FRAMES = {"backbone": "mobilenet_v3_small", "pretrained_backbone": False, "train_backbone": True,
          "feature_cache": False}
RECIPES.register("gbt")(Recipe("trees on pose and box motion (start here)", {"classifier": "gbt", **POSE_ONLY},
                               "gradient-boosted trees on window statistics of the pose and box-motion features: "
                               "seconds on a CPU, nothing downloaded; the most accurate on the benches"))
RECIPES.register("pose_lstm")(Recipe("LSTM on pose and box motion", {"classifier": "neural", **POSE_ONLY},
                                     "a recurrent network over the same features, frame by frame: minutes on a CPU"))
RECIPES.register("rgb_only")(Recipe("frames only (backbone from scratch)", {"classifier": "neural", **FRAMES,
                                                                            "use_pose": False},
                                    "a CNN on the cropped frames, for behaviours seen in pixels but not in keypoints; "
                                    "a GPU is advised"))
RECIPES.register("pose_rgb")(Recipe("frames and pose (backbone from scratch)", {"classifier": "neural", **FRAMES,
                                                                                "use_pose": True},
                                    "the CNN's frame features fused with pose; a GPU is advised"))
