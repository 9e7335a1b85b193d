"""A study file (TOML) read into plain values, with the line of every key for messages.

Why its own module: validation, planning, running and status all read the same parsed study, and
every message about a key must name the file and the line the user has to edit. `tomllib` (tomli
on Python 3.10) parses; it gives no positions, so `KeyLines` finds a key's line by scanning the
text for it inside its table (headers, dotted headers, inline tables and `[[arrays]]`).

The schema (`SCHEMA`) is the one list of the keys each table takes; `validate` refuses any other
key with a "did you mean". Values stay as TOML gave them until `validate` checks them and `plan`
turns them into library requests.
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from actstore.errors import ActstoreError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

#: the analysis keys a study (and each system, to override them) takes
ANALYSIS_KEYS = ("similarity", "measures", "bootstrap", "n", "retrieval", "tsne", "neurons", "probe",
                 "interventions", "seed")
#: the keys an ingest takes from [data] and, per system, overrides there
DATA_KEYS = ("source", "data_dir", "split", "corpus", "languages", "language_set", "levels", "limit",
             "modalities", "languages_csv", "cache_dir")
#: every table of a study file and the keys it takes ("*": any key, e.g. storage options)
SCHEMA: dict[str, tuple[str, ...]] = {
    "": ("study", "store", "data", "systems", "analyses", "cross_model", "report"),
    "study": ("name", "title", "description", "citation", "out"),
    "store": ("path", "storage_options"),
    "store.storage_options": ("*",),
    "data": DATA_KEYS,
    "data.levels": ("high", "medium", "low"),
    "system": ("model", "build", "convert", "optional", "adapter", "adapter_options", "layers", "points",
               "sites", "target_lang", "dtype", "vector_dtype", "device", "batch_size", "max_seconds",
               "memory_budget", "engine", "ray_address", "ray_actors", "width", "download", "analyses",
               *DATA_KEYS),
    "system.adapter_options": ("*",),
    "analyses": ANALYSIS_KEYS,
    "n": ("cross-modal", "cross-lingual", "all", "speech-speech", "text-text", "speech-text"),
    "tsne": ("points", "per_language", "perplexity", "max_iter"),
    "retrieval": ("points", "kinds", "n"),
    "neurons": ("points", "sites", "k", "global_k", "boot"),
    "probe": ("points", "folds"),
    "intervention": ("site", "units", "top", "target", "value", "seeds", "controls", "conditioning",
                     "target_lang", "boot", "generate", "max_new_tokens", "batch_size", "source",
                     "data_dir", "split", "languages", "limit"),
    "cross_model": ("a", "b", "modality_a", "modality_b", "points_a", "points_b", "languages", "measure", "n"),
    "report": ("path", "models", "measure", "bootstrap", "published"),
    "report.published": ("*",),
}


class StudyError(ActstoreError):
    """A study file that cannot run: one sentence per problem, each naming its key and line."""

    def __init__(self, problems: list[str]):
        self.problems = list(problems)
        super().__init__("\n".join(self.problems))


_HEADER = re.compile(r"^\s*(\[\[?)\s*([^\]]+?)\s*\]\]?\s*(#.*)?$")
_KEY = re.compile(r"^\s*([A-Za-z0-9_\-\"'.]+)\s*=")


def _parts(dotted: str) -> tuple[str, ...]:
    return tuple(p.strip().strip("\"'") for p in dotted.split("."))


class KeyLines:
    """Line numbers (from 1) of keys in a TOML text: `line(("systems", "x", "layers"))`."""

    def __init__(self, text: str):
        self._lines: dict[tuple[str, ...], int] = {}
        table: tuple[str, ...] = ()
        for number, line in enumerate(text.splitlines(), start=1):
            header = _HEADER.match(line)
            if header:
                table = _parts(header.group(2))
                self._lines.setdefault(table, number)
                continue
            key = _KEY.match(line)
            if key:
                path = table + _parts(key.group(1))
                self._lines.setdefault(path, number)
                for inner in re.findall(r"[{,]\s*([A-Za-z0-9_\-\"']+)\s*=", line[key.end():]):
                    self._lines.setdefault(path + _parts(inner), number)

    def line(self, path: tuple[str | int, ...]) -> int | None:
        """The line of `path` (integers, i.e. array positions, are skipped), else of its closest parent."""
        keys = tuple(str(p) for p in path if not isinstance(p, int))
        while keys:
            if keys in self._lines:
                return self._lines[keys]
            keys = keys[:-1]
        return None


@dataclass
class Study:
    """A parsed study file: its values, where it came from, and the lines of its keys."""

    name: str
    origin: str  # the file path, or "shipped study NAME"
    values: dict[str, Any]
    lines: KeyLines
    base: Path = field(default_factory=Path.cwd)  # relative paths in the file resolve here

    def where(self, *path: str | int) -> str:
        """'demo.toml line 12, key systems.x.layers': what a message names."""
        line = self.lines.line(path)
        key = ".".join(str(p) for p in path if not isinstance(p, int))
        return f"{self.origin}{f' line {line}' if line else ''}, key {key}"

    def table(self, name: str) -> dict[str, Any]:
        value = self.values.get(name)
        return value if isinstance(value, dict) else {}

    @property
    def systems(self) -> dict[str, dict[str, Any]]:
        """Systems by stored model name, in file order."""
        return {k: v for k, v in self.table("systems").items() if isinstance(v, dict)}

    @property
    def out(self) -> Path:
        """The study's folder for built models and its report (default: <name>-out)."""
        return self.path(self.table("study").get("out") or f"{self.name}-out")

    def path(self, value: str) -> Path:
        p = Path(value).expanduser()
        return p if p.is_absolute() else self.base / p


def shipped_studies() -> dict[str, str]:
    """Name -> first comment line of every study shipped with actstore (actstore/data/studies)."""
    out: dict[str, str] = {}
    folder = resources.files("actstore.data").joinpath("studies")
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        if entry.name.endswith(".toml"):
            first = entry.read_text("utf-8").splitlines()[0].lstrip("# ").strip()
            out[entry.name[:-5]] = first
    return out


def parse_study(text: str, origin: str, *, name: str | None = None, base: Path | None = None) -> Study:
    """A study from TOML text; a syntax error is one sentence with its line."""
    try:
        values = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise StudyError([f"{origin} is not valid TOML ({exc}); fix the syntax there."]) from None
    title = values.get("study", {}).get("name") if isinstance(values.get("study"), dict) else None
    return Study(name=str(name or title or Path(origin).stem), origin=origin, values=values,
                 lines=KeyLines(text), base=base or Path.cwd())


def load_study(ref: str | Path, *, overrides: list[str] | None = None) -> Study:
    """A study file by path, or a shipped study by name (`actstore study --list`), with
    `overrides` ("data.limit=5", "systems.x.limit=3") applied on top."""
    path = Path(ref).expanduser()
    if path.is_file():
        study = parse_study(path.read_text("utf-8"), str(path), base=Path.cwd())
    else:
        shipped = shipped_studies()
        if str(ref) not in shipped:
            from actstore.ingest.model_paths import did_you_mean

            raise StudyError([f"No study file {ref} and no shipped study of that name{did_you_mean(str(ref), shipped)}; "
                              f"pass a .toml path or one of {', '.join(shipped)} (see `actstore study --list`)."])
        text = resources.files("actstore.data").joinpath("studies", f"{ref}.toml").read_text("utf-8")
        study = parse_study(text, f"shipped study {ref}", name=str(ref))
    for item in overrides or ():
        apply_override(study, item)
    return study


def apply_override(study: Study, item: str) -> None:
    """Set one dotted key from KEY=VALUE (the value read as TOML, else as a string)."""
    key, sep, raw = item.partition("=")
    parts = [p.strip() for p in key.split(".") if p.strip()]
    if not sep or not parts:
        raise StudyError([f"--set {item!r} is not KEY=VALUE; write e.g. --set data.limit=5."])
    try:
        value = tomllib.loads(f"v = {raw.strip()}")["v"]
    except tomllib.TOMLDecodeError:
        value = raw.strip()
    table = study.values
    for part in parts[:-1]:
        table = table.setdefault(part, {})
        if not isinstance(table, dict):
            raise StudyError([f"--set {item!r}: {part} is not a table in {study.origin}; set a key inside one."])
    table[parts[-1]] = value
