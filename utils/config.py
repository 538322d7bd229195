"""One config path for every stage: default_config.yaml < user --config YAML < explicit CLI flags.

The defaults file documents each key as `key: value  # (type[, range]) meaning`; this module reads that
documentation so the CLI, validation and the GUI share one declaration. CLI options are added with
argparse.SUPPRESS defaults, so after parsing only the flags the user typed are present: that is how an
explicit flag is told apart from a default.
"""
import argparse
import difflib
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import yaml

from utils.errors import UserError
from utils.io import atomic_write_text

DEFAULT_CONFIG_PATH = Path(__file__).resolve().parents[1] / "default_config.yaml"
_KEY_LINE = re.compile(r"^  (\w+):.*#\s*\((\w+)(?:,\s*([^)]*))?\)\s*(.*)$")
_SECTION_LINE = re.compile(r"^(\w+):\s*(#.*)?$")
TYPES = ("int", "float", "bool", "str", "path", "choice", "list")


@dataclass(frozen=True)
class Option:
    section: str
    name: str
    default: object
    type: str
    range: str  # "" | "a..b" | ">=a" | ">a" | "a|b|c"
    help: str

    @property
    def choices(self):
        return self.range.split("|") if self.type == "choice" else None


@lru_cache(maxsize=None)
def load_schema(path=DEFAULT_CONFIG_PATH) -> dict:
    """{section: {key: Option}} from the defaults file and its per-key comments."""
    text = Path(path).read_text()
    values = yaml.safe_load(text)
    schema, section = {}, None
    for line in text.splitlines():
        if m := _SECTION_LINE.match(line):
            section = m.group(1)
            schema[section] = {}
        elif m := _KEY_LINE.match(line):
            name, typ, rng, doc = m.groups()
            if typ not in TYPES:
                raise ValueError(f"{path}: key {name} has unknown type {typ!r}; use one of {TYPES}")
            schema[section][name] = Option(section, name, values[section][name], typ, (rng or "").strip(), doc)
    for sec, keys in values.items():
        missing = set(keys) - set(schema.get(sec, {}))
        if missing:
            raise ValueError(f"{path}: keys {sorted(missing)} in section {sec} lack a `# (type) meaning` comment")
    return schema


def section_defaults(section: str) -> dict:
    """{key: default} of one section of default_config.yaml."""
    return {name: opt.default for name, opt in load_schema()[section].items()}


def section_options(sections) -> dict:
    """{key: Option} over the given sections; a key may appear in only one of them."""
    options = {}
    schema = load_schema()
    for section in sections:
        for name, opt in schema[section].items():
            if name in options:
                raise ValueError(f"config key {name} is declared in both {options[name].section} and {section}")
            options[name] = opt
    return options


def add_config_arguments(parser: argparse.ArgumentParser, sections, required=(), choices=None) -> None:
    """One --flag per config key of the sections, help and type from the defaults file, plus --config.
    `choices` ({key: names}) gives keys whose valid values live in a registry, not in the YAML."""
    choices = choices or {}
    parser.add_argument("--config", default=None, metavar="PATH",
                        help="user YAML overriding default_config.yaml (same sections); CLI flags override both")
    for name, opt in section_options(sections).items():
        default_txt = "required" if name in required else f"default: {opt.default}"
        help_txt = f"{opt.help} [{opt.type}{', ' + opt.range if opt.range else ''}; {default_txt}]"
        help_txt = help_txt.replace("%", "%%")
        kwargs = dict(default=argparse.SUPPRESS, help=help_txt)
        if opt.type == "bool":
            parser.add_argument(f"--{name}", action=argparse.BooleanOptionalAction, **kwargs)
            continue
        if name in choices or opt.type == "choice":
            kwargs["choices"] = choices.get(name, opt.choices)
        elif opt.type == "list":
            kwargs.update(nargs="+", type=_scalar)
        else:
            kwargs["type"] = {"int": int, "float": float}.get(opt.type, str)
        parser.add_argument(f"--{name}", metavar=None if "choices" in kwargs else name.upper(), **kwargs)


def _scalar(text: str):
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    return text


def resolve_config(args: argparse.Namespace, sections, required=()) -> argparse.Namespace:
    """Merge defaults < args.config YAML < explicit attributes of args; validate; return a full namespace."""
    options = section_options(sections)
    merged = {name: opt.default for name, opt in options.items()}
    config_path = getattr(args, "config", None)
    if config_path:
        merged.update(read_user_config(config_path, sections))
    explicit = {k: v for k, v in vars(args).items() if k in options}
    merged.update(explicit)
    for name, value in merged.items():
        merged[name] = validate_value(options[name], value, source=_source(name, explicit, config_path))
    for name in required:
        if merged.get(name) in (None, ""):
            raise UserError(f"--{name} is required (or set {name} in the {options[name].section} section of --config)")
    extra = {k: v for k, v in vars(args).items() if k not in options}
    return argparse.Namespace(**{**extra, **merged})


def _source(name, explicit, config_path) -> str:
    return f"--{name}" if name in explicit else (f"{config_path}" if config_path else "default_config.yaml")


def read_user_config(path, sections) -> dict:
    """Flat {key: value} for the given sections from a user YAML; every key of every section is checked."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"config file not found: {path}; pass an existing YAML to --config")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise UserError(f"{path} is not valid YAML ({str(exc).splitlines()[0]}); fix the syntax") from None
    if not isinstance(data, dict):
        raise UserError(f"{path} must be a mapping of sections to keys, like default_config.yaml")
    schema = load_schema()
    flat = {}
    for section, keys in data.items():
        if section not in schema:
            raise UserError(f"{path}: unknown section '{section}'{_did_you_mean(section, schema)}; "
                            f"valid sections: {', '.join(schema)}")
        if not isinstance(keys, dict):
            raise UserError(f"{path}: section '{section}' must hold `key: value` lines")
        for key, value in keys.items():
            if key not in schema[section]:
                raise UserError(f"{path}: unknown key '{key}' in section '{section}'"
                                f"{_did_you_mean(key, schema[section])}; valid keys: {', '.join(schema[section])}")
            validate_value(schema[section][key], value, source=str(path))
            if section in sections:
                flat[key] = value
    return flat


def _did_you_mean(word, candidates) -> str:
    close = difflib.get_close_matches(word, list(candidates), n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""


def validate_value(opt: Option, value, source: str = ""):
    """The value cast to the option's type; a UserError naming the key, the value and what is allowed."""
    where = f"{source}: " if source else ""
    if value is None:
        if opt.default is None or opt.type in ("path", "str", "list"):
            return None
        raise UserError(f"{where}{opt.name} must not be empty; expected {opt.type} {opt.range}".rstrip())
    bad = UserError(f"{where}{opt.name}={value!r} is not a valid {opt.type}"
                    f"{' in ' + opt.range if opt.range else ''} ({opt.help})")
    if opt.type == "bool":
        if isinstance(value, bool):
            return value
        raise bad
    if opt.type in ("int", "float"):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise bad
        if opt.type == "int" and value != int(value):
            raise bad
        value = int(value) if opt.type == "int" else float(value)
        if not _in_range(value, opt.range):
            raise bad
        return value
    if opt.type == "choice":
        if str(value) not in opt.choices:
            raise UserError(f"{where}{opt.name}={value!r} is not one of {', '.join(opt.choices)}"
                            f"{_did_you_mean(str(value), opt.choices)}")
        return str(value)
    if opt.type == "list":
        if not isinstance(value, (list, tuple)):
            raise bad
        return list(value)
    return str(value)


def _in_range(value, rng: str) -> bool:
    if not rng:
        return True
    if ".." in rng:
        lo, hi = (float(v) for v in rng.split(".."))
        return lo <= value <= hi
    if rng.startswith(">="):
        return value >= float(rng[2:])
    if rng.startswith(">"):
        return value > float(rng[1:])
    raise ValueError(f"unknown range {rng!r}")


def dump_config(cfg: argparse.Namespace, sections, path) -> None:
    """Write the resolved values of the sections as YAML (same layout as default_config.yaml), atomically."""
    schema = load_schema()
    data = {s: {k: getattr(cfg, k) for k in schema[s] if hasattr(cfg, k)} for s in sections}
    atomic_write_text(path, yaml.safe_dump(data, sort_keys=False))
