"""Config precedence (defaults < --config YAML < CLI), validation and its errors."""
import argparse

import pytest
import yaml

from utils.config import (add_config_arguments, dump_config, read_yaml_layer, render_default_config,
                          resolve_config, section_options)
from utils.errors import UserError
from utils.schema import SECTIONS as ALL_SECTIONS
from utils.schema import PreprocessingConfig

SECTIONS = (PreprocessingConfig,)


def parse(*argv):
    parser = argparse.ArgumentParser()
    add_config_arguments(parser, SECTIONS)
    return resolve_config(parser.parse_args(list(argv)), PreprocessingConfig)


def write_yaml(tmp_path, data):
    path = tmp_path / "user.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_every_key_is_documented_with_a_type():
    assert set(ALL_SECTIONS) == {"preprocessing", "augmentation", "model", "training", "pretraining", "inference",
                                 "embedding", "detector_training"}
    for cls in ALL_SECTIONS.values():
        for opt in section_options(cls).values():
            assert opt.help and opt.kind


def test_every_default_is_one_of_its_choices(tmp_path):
    """validate_value takes a registry setting's default without listing the registry (that imports torch), so
    every default must be valid; a registry value that is not the default is still checked."""
    checked = 0
    for cls in ALL_SECTIONS.values():
        for opt in section_options(cls).values():
            if opt.kind == "choice" and opt.default is not None:
                assert opt.default in opt.choices, (opt.section, opt.name, opt.default, opt.choices)
                checked += opt.registry is not None
    assert checked >= 5  # backbones, heads, fusions, classifiers, detectors...
    with pytest.raises(UserError, match="user.yaml: classifier='forest' is not one of .*gbt"):
        read_yaml_layer(write_yaml(tmp_path, {"model": {"classifier": "forest"}}))


def test_default_config_yaml_is_generated_from_the_schema():
    from utils.config import DEFAULT_CONFIG_PATH
    assert DEFAULT_CONFIG_PATH.read_text() == render_default_config(), \
        "default_config.yaml is stale: run `python -m utils.schema`"
    on_disk = yaml.safe_load(DEFAULT_CONFIG_PATH.read_text())
    for name, cls in ALL_SECTIONS.items():
        assert on_disk[name] == {k: o.default for k, o in section_options(cls).items()}


def test_defaults_match_the_documented_users_defaults():
    cfg = parse()
    assert (cfg.window_size, cfg.window_stride, cfg.crop_size, cfg.pad_ratio) == (30, 15, 224, 0.2)
    # yolo_imgsz: null = the detector's own training size (was 640, which hurt weights trained at 320)
    assert (cfg.yolo_conf, cfg.yolo_iou, cfg.yolo_imgsz, cfg.device) == (0.25, 0.45, None, "auto")


@pytest.mark.parametrize("flag_style", ["--config", "--config="])
def test_precedence_defaults_yaml_cli(tmp_path, flag_style):
    path = write_yaml(tmp_path, {"preprocessing": {"window_size": 12, "crop_size": 96}})
    args = [f"--config={path}"] if flag_style.endswith("=") else ["--config", str(path)]
    cfg = parse(*args, "--crop_size", "64")
    assert cfg.window_size == 12  # from the YAML
    assert cfg.crop_size == 64  # the CLI beats the YAML
    assert cfg.window_stride == 15  # untouched default


def test_yaml_true_can_be_switched_off_on_the_cli(tmp_path):
    path = write_yaml(tmp_path, {"preprocessing": {"keep_last_box": True}})
    assert parse("--config", str(path)).keep_last_box is True
    assert parse("--config", str(path), "--no-keep_last_box").keep_last_box is False
    assert parse("--config", str(path), "--no_keep_last_box").keep_last_box is False  # older spelling, hidden


def test_unknown_key_suggests_the_close_match(tmp_path):
    path = write_yaml(tmp_path, {"preprocessing": {"windw_size": 12}})
    with pytest.raises(UserError, match=r"unknown key 'windw_size'.*did you mean 'window_size'.*valid keys"):
        parse("--config", str(path))


def test_unknown_section_is_an_error(tmp_path):
    path = write_yaml(tmp_path, {"prepocessing": {"window_size": 12}})
    with pytest.raises(UserError, match="did you mean 'preprocessing'"):
        parse("--config", str(path))


def test_other_stages_sections_are_validated_but_not_applied(tmp_path):
    path = write_yaml(tmp_path, {"training": {"epochs": 3}, "preprocessing": {"seed": 7}})
    cfg = parse("--config", str(path))
    assert cfg.seed == 7 and not hasattr(cfg, "epochs")
    bad = write_yaml(tmp_path, {"training": {"epochs": "many"}})
    with pytest.raises(UserError, match="epochs='many' is not a valid int"):
        parse("--config", str(bad))


@pytest.mark.parametrize("key,value,message", [
    ("yolo_conf", 1.5, "yolo_conf=1.5 is not a valid float in 0..1"),
    ("window_size", 0, "window_size=0 is not a valid int"),
    ("window_size", 2.5, "window_size=2.5 is not a valid int"),
    ("keep_last_box", "yes", "keep_last_box='yes' is not a valid bool"),
    ("split_strategy", "vidoe", "did you mean 'video'"),
])
def test_bad_values_name_key_and_range(tmp_path, key, value, message):
    path = write_yaml(tmp_path, {"preprocessing": {key: value}})
    with pytest.raises(UserError, match=message.replace("(", r"\(").replace(")", r"\)").replace(".", r"\.")):
        parse("--config", str(path))


def test_cli_range_is_checked_too():
    with pytest.raises(UserError, match="pad_ratio=-1.0"):
        parse("--pad_ratio", "-1")


def test_missing_and_invalid_yaml_files(tmp_path):
    with pytest.raises(UserError, match="config file not found"):
        parse("--config", str(tmp_path / "nope.yaml"))
    broken = tmp_path / "broken.yaml"
    broken.write_text("preprocessing: [unclosed\n")
    with pytest.raises(UserError, match="not valid YAML"):
        parse("--config", str(broken))


def test_required_keys(tmp_path):
    parser = argparse.ArgumentParser()
    add_config_arguments(parser, SECTIONS, required=("dataset_root",))
    with pytest.raises(UserError, match="--dataset_root is required"):
        resolve_config(parser.parse_args([]), PreprocessingConfig, required=("dataset_root",))


def test_resolved_config_round_trips(tmp_path):
    cfg = parse("--window_size", "8", "--no-save_sequence_npz")
    dump_config(cfg, tmp_path / "config.yaml")
    again = parse("--config", str(tmp_path / "config.yaml"))
    assert again.window_size == 8 and again.save_sequence_npz is False
    assert again == cfg


def test_help_lists_every_flag_with_its_default(capsys):
    from prepare_sequences_from_yolo import get_args_parser
    with pytest.raises(SystemExit):
        get_args_parser().parse_args(["--help"])
    out = capsys.readouterr().out
    for key in section_options(PreprocessingConfig):
        assert f"--{key}" in out
    assert "default: 30" in out
    assert "preprocessing settings:" in out  # grouped by section
    assert "--no_keep_last_box" not in out and "--keep_last_box, --no-keep_last_box" in out  # one spelling


def test_train_help_has_one_boolean_spelling_and_old_one_still_works(capsys):
    from train_behavior_lstm import get_args_parser
    with pytest.raises(SystemExit):
        get_args_parser().parse_args(["--help"])
    out = capsys.readouterr().out
    assert "--pretrained_backbone, --no-pretrained_backbone" in out and "--no_pretrained_backbone" not in out
    for group in ("augmentation settings:", "model settings:", "training settings:"):
        assert group in out
    assert get_args_parser().parse_args(["--no_pretrained_backbone"]).pretrained_backbone is False


@pytest.mark.parametrize("argv,message", [
    (["--train_ratio", "0.5"], "split ratios train=0.5 val=0.15 test=0.15 must each lie in 0..1 and sum to 1"),
    (["--yolo_imgsz", "300"], "yolo_imgsz=300 is not a multiple of 32.*use 288"),
    (["--split_strategy", "file"], "split_strategy file needs split_file"),
])
def test_cross_field_rules(argv, message):
    with pytest.raises(UserError, match=message):
        parse(*argv)


def test_print_config_shows_the_resolved_settings_and_exits(tmp_path, capsys):
    path = write_yaml(tmp_path, {"preprocessing": {"window_size": 12}})
    with pytest.raises(SystemExit) as exit_info:
        parse("--config", str(path), "--crop_size", "64", "--print_config")
    assert exit_info.value.code == 0
    printed = yaml.safe_load(capsys.readouterr().out)["preprocessing"]
    assert (printed["window_size"], printed["crop_size"], printed["window_stride"]) == (12, 64, 15)


def test_registry_names_are_the_choices_of_their_settings():
    from detectors import DETECTORS
    from model import BACKBONES
    from utils.schema import ModelSettings
    assert section_options(PreprocessingConfig)["detector"].choices == tuple(DETECTORS.names())
    assert section_options(ModelSettings)["backbone"].choices == ("none", *BACKBONES.names())


def test_an_edited_default_config_yaml_changes_the_defaults(tmp_path, monkeypatch):
    import utils.config
    edited = tmp_path / "default_config.yaml"
    edited.write_text(render_default_config().replace("  window_size: 30 ", "  window_size: 20 "))
    monkeypatch.setattr(utils.config, "DEFAULT_CONFIG_PATH", edited)
    assert parse().window_size == 20


def test_how_settings_relate_is_declared_once_in_the_schema():
    """Where a setting acts (applies, requires, off_value) and which inference settings override recorded ones
    (overrides, machine) come from the schema's fields; the checks and the predictor read them there."""
    from types import SimpleNamespace

    from utils.config import inapplicable_settings, settings_that_apply
    from utils.schema import AugmentConfig, InferenceConfig
    prep = PreprocessingConfig(detector="background", yolo_conf=0.5, bg_threshold=10, max_reuse_frames=3,
                               pose_fps=25.0)
    ignored = dict(inapplicable_settings(SimpleNamespace(preprocessing=prep), ("preprocessing",),
                                         {"detector": ({"background"}, "background")}))
    assert ignored == {"preprocessing.yolo_conf": "only the yolo detector uses it, not background",
                       "preprocessing.pose_fps": "only the pose_file detector uses it, not background",
                       "preprocessing.max_reuse_frames": "keep_last_box is off"}
    assert settings_that_apply(AugmentConfig, "input", "body_features") == (
        "hflip_prob", "vflip_prob", "scale_range", "temporal_jitter", "frame_dropout", "pose_jitter", "speed_range",
        "flip_idx")  # the egocentric body features: mirroring, scale and time, never rotation or pixels
    overrides = {n: (o.overrides, o.machine) for n, o in section_options(InferenceConfig).items() if o.overrides}
    assert overrides == {"yolo_weights": ("yolo_weights", False), "yolo_imgsz": ("yolo_imgsz", False),
                         "window_size": ("window_size", False), "keep_last_box": ("keep_last_box", False),
                         "detect_every": ("detect_every", False), "pose_fps": ("pose_fps", False),
                         "keypoint_map": ("keypoint_map", False), "sensor_rate": ("sensor_rate", False),
                         "sensor_offset_s": ("sensor_offset_s", False), "device": ("device", True),
                         "detector_backend": ("detector_backend", True),
                         # the recording's own scale, never the training rig's (models trained with body_length_cm)
                         "pixels_per_cm": ("pixels_per_cm", True)}
    assert all(name in section_options(PreprocessingConfig) for name, _ in overrides.values())
