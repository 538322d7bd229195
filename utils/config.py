"""The config mechanism: schema fields -> CLI flags, YAML layers, validation, resolved section objects.

The declarations live in utils/schema.py (one dataclass per section). Precedence, lowest first:
schema defaults < default_config.yaml (generated from the schema; a lab may edit it) < the user's --config
YAML < flags typed on the command line. CLI options are added with argparse.SUPPRESS defaults, so after
parsing only the flags the user typed are present: that is how an explicit flag is told apart from a default.
Booleans are `--key` / `--no-key`; the older `--no_key` spelling is accepted as a hidden alias.
"""
import argparse
import difflib
import importlib
import sys
import types
from dataclasses import MISSING, dataclass, field, fields
from functools import lru_cache
from pathlib import Path

import yaml

from utils.errors import UserError, first_line
from utils.io import atomic_write_text

DEFAULT_CONFIG_PATH = Path(__file__).resolve().parents[1] / "default_config.yaml"


def setting(default, help: str, *, minimum=None, maximum=None, exclusive_minimum=None, choices=None,
            registry: str = None, extra_choices=(), path=False, applies: dict = None, requires: str = None,
            off_value=None, overrides: str = None, machine: bool = False, label: str = None, basic: bool = False):
    """A schema field: default plus the metadata every consumer reads. `registry` ("module:NAME") names a
    Registry whose names are the valid values (imported when first needed, so the schema stays light).

    How settings relate, declared here once:
      applies    {dimension: values}: the setting does something only where the run's value of each dimension
                 (APPLIES_WHY: classifier, head, backbone, input, detector) is one of these
      requires   "section.name" of a boolean setting that must be on for this one to act
      off_value  the value that switches the setting's feature off: never reported as ignored
      overrides  inference settings: the recorded preprocessing setting this one replaces when given (None = the
                 checkpoint's, another value with a warning)
      machine    with overrides: always the value given here (a property of this machine, not of the model)
      path       True: a file or folder; "input": one that must exist when given (the dashboard says so before
                 anything runs or is written)
    How the dashboard shows it:
      label      its name in words (default: the setting's name in words, Option.label)
      basic      shown first; the others are folded under "advanced" until opened
    """
    meta = dict(help=help, minimum=minimum, maximum=maximum, exclusive_minimum=exclusive_minimum,
                choices=tuple(choices) if choices else None, registry=registry, extra_choices=tuple(extra_choices),
                path=path, applies={k: tuple(v) for k, v in (applies or {}).items()}, requires=requires,
                off_value=off_value, overrides=overrides, machine=machine, label=label, basic=basic)
    return field(default=default, metadata=meta)


# abbreviations in setting names, in words for the dashboard's labels (Option.label)
LABEL_WORDS = {"yolo": "YOLO", "iou": "IoU", "conf": "confidence", "imgsz": "image size", "num": "number of",
               "bg": "background", "lr": "learning rate", "gbt": "trees:", "prob": "probability", "std": "spread",
               "deg": "(degrees)", "frac": "(fraction)", "dim": "size", "idx": "index", "s": "(s)", "min": "minimum",
               "max": "maximum", "hflip": "horizontal flip", "vflip": "vertical flip", "kp": "keypoint",
               "npz": "arrays", "dlc": "DeepLabCut", "amp": "mixed precision", "fps": "frame rate", "cm": "cm",
               "val": "validation", "iter": "rounds", "pseudo": "pseudo-label", "bf16": "bfloat16", "boris": "BORIS",
               "dir": "folder", "proj": "projection", "slowfast": "SlowFast", "init": "start"}


@dataclass(frozen=True)
class Option:
    """One setting as the CLI, YAML, validation and the GUI see it."""
    section: str
    name: str
    default: object
    kind: str  # int | float | bool | str | path | choice | list
    optional: bool  # None is a valid value (null in YAML)
    help: str
    minimum: float = None
    maximum: float = None
    exclusive_minimum: float = None
    static_choices: tuple = None
    registry: str = None
    extra_choices: tuple = ()
    applies: dict = field(default_factory=dict)
    requires: str = None
    off_value: object = None
    overrides: str = None
    machine: bool = False
    must_exist: bool = False  # an input path (setting(path="input"))
    given_label: str = None
    basic: bool = False

    @property
    def label(self) -> str:
        """The setting in words, as the dashboard names it (the name itself is in its tooltip)."""
        if self.given_label:
            return self.given_label
        words = [LABEL_WORDS.get(w, w) for w in self.name.split("_")]
        text = " ".join(w for w in words if w)
        return text[0].upper() + text[1:]

    @property
    def choices(self):
        if self.registry:
            module, name = self.registry.split(":")
            return tuple(self.extra_choices) + tuple(getattr(importlib.import_module(module), name).names())
        return self.static_choices

    @property
    def range_text(self) -> str:
        if self.kind == "choice":
            return "|".join(self.choices)
        if self.minimum is not None and self.maximum is not None:
            return f"{_num(self.minimum)}..{_num(self.maximum)}"
        if self.exclusive_minimum is not None:
            return f">{_num(self.exclusive_minimum)}"
        if self.minimum is not None:
            return f">={_num(self.minimum)}"
        return ""


def _num(value) -> str:
    return f"{value:g}"


def _kind(annotation, meta) -> tuple:
    """(kind, optional) from a field's annotation such as `int | None`."""
    args = [a for a in getattr(annotation, "__args__", (annotation,)) if a is not type(None)]
    optional = len(args) < len(getattr(annotation, "__args__", (annotation,)))
    base = args[0]
    if meta["choices"] or meta["registry"]:
        return "choice", optional
    if meta["path"]:
        return "path", optional
    return {bool: "bool", int: "int", float: "float", str: "str", list: "list"}[base], optional


def section_name(cls) -> str:
    from utils.schema import SECTIONS
    return next(name for name, c in SECTIONS.items() if c is cls or issubclass(cls, c))


@lru_cache(maxsize=None)
def section_options(cls) -> dict:
    """{key: Option} of one section class, in declaration order."""
    section, out = section_name(cls), {}
    for f in fields(cls):
        if "help" not in f.metadata:
            continue  # a field that is not a user setting (e.g. ModelConfig's data-derived sizes)
        kind, optional = _kind(f.type, f.metadata)
        m = f.metadata
        out[f.name] = Option(section, f.name, None if f.default is MISSING else f.default, kind, optional, m["help"],
                             m["minimum"], m["maximum"], m["exclusive_minimum"], m["choices"], m["registry"],
                             m["extra_choices"], m["applies"], m["requires"], m["off_value"], m["overrides"],
                             m["machine"], m["path"] == "input", m["label"], m["basic"])
    return out


# ------------------------------------------------------------------------------- how settings relate
# how a setting that does not apply to a run is explained, per dimension of `applies` (in the order checked)
APPLIES_WHY = {
    "detector": "only the {allowed} detector{s} use{v} it, not {actual}",
    "classifier": "only the {allowed} classifier{s} use{v} it, not {actual}",
    "backbone": "only a model with a {allowed} backbone uses it; {actual}",
    "head": "only the {allowed} head{s} use{v} it, not {actual}",
    "input": "it changes only the {allowed}: {actual}",
}


def _joined(values, conjunction: str = "and") -> str:
    values = list(values)
    return values[0] if len(values) == 1 else f"{', '.join(values[:-1])} {conjunction} {values[-1]}"


def settings_that_apply(cls, dimension: str, value: str) -> tuple:
    """Names of the section's settings that act where `dimension` is `value` (settings without that dimension
    act everywhere)."""
    return tuple(n for n, o in section_options(cls).items() if value in o.applies.get(dimension, (value,)))


def why_inapplicable(opt: Option, cfg, context: dict):
    """Why setting `opt` cannot act in a run, or None. cfg: a namespace of section instances (for `requires`);
    context: {dimension: (the run's values, how to call them)}."""
    if opt.requires:
        section, name = opt.requires.split(".")
        if not getattr(getattr(cfg, section), name):
            return f"{name} is off"
    for dimension, template in APPLIES_WHY.items():
        allowed = opt.applies.get(dimension)
        if allowed is None or dimension not in context:
            continue
        values, actual = context[dimension]
        if not set(values) & set(allowed):
            many = len(allowed) > 1
            allowed = _joined(allowed, "or" if dimension == "backbone" else "and")
            return template.format(allowed=allowed, actual=actual, s="s" if many else "", v="" if many else "s")
    return None


def inapplicable_settings(cfg, sections, context: dict) -> list:
    """(section.name, why) for each setting of the named sections of cfg given a non-default value (other than its
    off_value) that cannot act in a run described by `context` (see why_inapplicable)."""
    out = []
    for section in sections:
        instance = getattr(cfg, section)
        for name, opt in section_options(type(instance)).items():
            value = getattr(instance, name)
            if value == opt.default or (opt.off_value is not None and value == opt.off_value):
                continue
            why = why_inapplicable(opt, cfg, context)
            if why:
                out.append((f"{section}.{name}", why))
    return out


def all_sections() -> dict:
    from utils.schema import SECTIONS
    return SECTIONS


# ------------------------------------------------------------------------------------------------ validation
def validate_value(opt: Option, value, source: str = ""):
    """The value cast to the option's type; a UserError naming the key, the value and what is allowed."""
    where = f"{source}: " if source else ""
    if value is None:
        if opt.optional:
            return None
        raise UserError(f"{where}{opt.name} must not be empty; expected {opt.kind} {opt.range_text}".rstrip())
    if opt.kind == "choice" and opt.registry and value == opt.default:
        # a default is valid (tests/test_config.py checks every one); listing a registry's names imports its module
        # (classifiers: torch, torchvision, sklearn), seconds at the start of every stage that reads the defaults
        return str(value)
    bad = UserError(f"{where}{opt.name}={value!r} is not a valid {opt.kind}"
                    f"{' in ' + opt.range_text if opt.range_text else ''} ({opt.help})")
    if opt.kind == "bool":
        if isinstance(value, bool):
            return value
        raise bad
    if opt.kind in ("int", "float"):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise bad
        if opt.kind == "int" and value != int(value):
            raise bad
        value = int(value) if opt.kind == "int" else float(value)
        if not _in_range(value, opt):
            raise bad
        return value
    if opt.kind == "choice":
        choices = opt.choices
        if str(value) not in choices:
            raise UserError(f"{where}{opt.name}={value!r} is not one of {', '.join(choices)}"
                            f"{did_you_mean(str(value), choices)}")
        return str(value)
    if opt.kind == "list":
        if not isinstance(value, (list, tuple)):
            raise bad
        return list(value)
    return str(value)


def _in_range(value, opt: Option) -> bool:
    if opt.minimum is not None and value < opt.minimum:
        return False
    if opt.maximum is not None and value > opt.maximum:
        return False
    return opt.exclusive_minimum is None or value > opt.exclusive_minimum


def did_you_mean(word, candidates) -> str:
    close = difflib.get_close_matches(word, list(candidates), n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""


def read_yaml_layer(path) -> dict:
    """{section: {key: value}} from a YAML file in default_config.yaml's layout; every key of every section is
    checked (a key for another stage is checked too, so one file can serve all stages)."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"config file not found: {path}; pass an existing YAML to --config")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise UserError(f"{path} is not valid YAML ({first_line(exc)}); fix the syntax") from None
    if not isinstance(data, dict):
        raise UserError(f"{path} must be a mapping of sections to keys, like default_config.yaml")
    sections, layer = all_sections(), {}
    for section, keys in data.items():
        if section not in sections:
            raise UserError(f"{path}: unknown section '{section}'{did_you_mean(section, sections)}; "
                            f"valid sections: {', '.join(sections)}")
        if not isinstance(keys, dict):
            raise UserError(f"{path}: section '{section}' must hold `key: value` lines")
        options = section_options(sections[section])
        for key, value in keys.items():
            if key not in options:
                raise UserError(f"{path}: unknown key '{key}' in section '{section}'"
                                f"{did_you_mean(key, options)}; valid keys: {', '.join(options)}")
            layer.setdefault(section, {})[key] = validate_value(options[key], value, source=str(path))
    return layer


# ------------------------------------------------------------------------------------------------------- CLI
def add_config_arguments(parser: argparse.ArgumentParser, classes, required=(), exclude=(), only=None) -> None:
    """--config, --print_config and one --flag per setting of the section classes, grouped by section
    (`exclude`: settings a script sets itself, e.g. a folder run's per-video paths; `only`: {class: names} for a
    script that uses a few settings of a section)."""
    parser.add_argument("--config", default=None, metavar="PATH",
                        help="user YAML overriding default_config.yaml (same sections); CLI flags override both")
    parser.add_argument("--print_config", action="store_true",
                        help="print the resolved settings as YAML and exit")
    for cls in classes:
        group = parser.add_argument_group(f"{section_name(cls)} settings", " ".join((cls.__doc__ or "").split()))
        for name, opt in section_options(cls).items():
            if name not in exclude and (not only or cls not in only or name in only[cls]):
                _add_option(group, opt, name in required)


def _add_option(group, opt: Option, required: bool) -> None:
    default_txt = "required" if required else f"default: {_yaml_scalar(opt.default)}"
    help_txt = f"{opt.help} [{opt.kind}{', ' + opt.range_text if opt.range_text else ''}; {default_txt}]"
    kwargs = dict(default=argparse.SUPPRESS, help=help_txt.replace("%", "%%"))
    if opt.kind == "bool":
        group.add_argument(f"--{opt.name}", action=argparse.BooleanOptionalAction, **kwargs)
        group.add_argument(f"--no_{opt.name}", dest=opt.name, action="store_false", default=argparse.SUPPRESS,
                           help=argparse.SUPPRESS)  # older spelling, kept working
        return
    if opt.kind == "choice":
        kwargs["choices"] = opt.choices
    elif opt.kind == "list":
        kwargs.update(nargs="+", type=parse_scalar, metavar=opt.name.upper())
    else:
        kwargs.update(type={"int": int, "float": float}.get(opt.kind, str), metavar=opt.name.upper())
    group.add_argument(f"--{opt.name}", **kwargs)


def parse_scalar(text: str):
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    return text


def resolve_config(args: argparse.Namespace, classes, required=()):
    """Merge schema defaults < default_config.yaml < args.config < explicit flags of args; validate every value
    and each section's cross-field rules. One class: its instance; several: a namespace of instances by
    section name. With --print_config the result is printed as YAML and the program exits."""
    single = isinstance(classes, type)
    classes = (classes,) if single else tuple(classes)
    layers = [(str(DEFAULT_CONFIG_PATH), read_yaml_layer(DEFAULT_CONFIG_PATH) if DEFAULT_CONFIG_PATH.is_file() else {})]
    if getattr(args, "config", None):
        layers.append((str(args.config), read_yaml_layer(args.config)))
    resolved = {}
    for cls in classes:
        section, options = section_name(cls), section_options(cls)
        values = {name: opt.default for name, opt in options.items()}
        for _, layer in layers:
            values.update(layer.get(section, {}))
        for name in options:
            if name in vars(args):
                values[name] = validate_value(options[name], getattr(args, name), source=f"--{name}")
        for name in () if getattr(args, "print_config", False) else required:  # printing needs no inputs
            if name in options and values.get(name) in (None, ""):
                raise UserError(f"--{name} is required (or set {name} in the {section} section of --config)")
        instance = cls(**values)
        instance.check()
        resolved[section] = instance
    if getattr(args, "print_config", False):
        print(config_yaml(resolved.values()), end="")
        raise SystemExit(0)
    return next(iter(resolved.values())) if single else types.SimpleNamespace(**resolved)


def settings_dict(instance) -> dict:
    """The user settings of a section instance as a plain dict (for checkpoints, manifests and YAML)."""
    return {name: getattr(instance, name) for name in section_options(type(instance))}


def config_yaml(instances) -> str:
    return yaml.safe_dump({section_name(type(i)): settings_dict(i) for i in instances}, sort_keys=False)


def dump_config(instances, path) -> None:
    """Write the resolved sections as YAML (default_config.yaml's layout, readable by --config), atomically."""
    if not isinstance(instances, (list, tuple)):
        instances = list(vars(instances).values()) if isinstance(instances, types.SimpleNamespace) else [instances]
    atomic_write_text(path, config_yaml(instances))


def from_recorded(cls, recorded: dict, source: str):
    """A section instance from settings recorded in a checkpoint or manifest: keys it lacks (older files) take
    the schema's defaults; keys the schema no longer has are ignored; values are validated."""
    options = section_options(cls)
    values = {name: opt.default for name, opt in options.items()}
    for name, value in recorded.items():
        if name in options:
            values[name] = validate_value(options[name], value, source=source)
    return cls(**values)


# ----------------------------------------------------------------------------------- default_config.yaml
HEADER = """\
# BehaviorScope defaults. GENERATED from utils/schema.py by `python -m utils.schema`: change a setting there.
# Precedence: this file < a user YAML given with --config < explicit command-line flags. Copy a section into
# your own YAML to change it for your lab (or edit this file: its values are read as the defaults).
# Each key is documented as `# (type[, range]) meaning`. Types: int, float, bool, str, path (a file or folder,
# may be null), choice (one of a|b|c), list. Ranges: a..b (inclusive), >=a, >a. Unknown keys are an error.
"""


def _yaml_scalar(value) -> str:
    return yaml.safe_dump(value, default_flow_style=True, width=10 ** 6).splitlines()[0]


def render_default_config() -> str:
    lines = [HEADER]
    for section, cls in all_sections().items():
        rule = "# " + "-" * 106
        lines += [rule, f"# {' '.join((cls.__doc__ or '').split())}", rule, f"{section}:"]
        options = section_options(cls)
        width = max(len(f"  {n}: {_yaml_scalar(o.default)}") for n, o in options.items()) + 2
        for name, opt in options.items():
            kv = f"  {name}: {_yaml_scalar(opt.default)}"
            spec = opt.kind + (f", {opt.range_text}" if opt.range_text else "")
            lines.append(f"{kv:<{width}}# ({spec}) {opt.help}")
        lines.append("")
    return "\n".join(lines)


def write_default_config_cli() -> None:
    parser = argparse.ArgumentParser(description="Write default_config.yaml from utils/schema.py.")
    parser.add_argument("--check", action="store_true", help="exit 1 if the committed file is stale, write nothing")
    args = parser.parse_args()
    text = render_default_config()
    if args.check:
        stale = not DEFAULT_CONFIG_PATH.is_file() or DEFAULT_CONFIG_PATH.read_text() != text
        print(f"{DEFAULT_CONFIG_PATH} is {'STALE: run python -m utils.schema' if stale else 'current'}")
        sys.exit(1 if stale else 0)
    atomic_write_text(DEFAULT_CONFIG_PATH, text)
    print(f"wrote {DEFAULT_CONFIG_PATH}")
