"""Finding SONAR's files in fairseq2's asset cache, offline, without fairseq2 installed.

fairseq2 0.8 (`fairseq2.assets`) downloads a card's `checkpoint`/`tokenizer` URI to
`<cache>/<sha1(uri).hexdigest()[:24]>/<file name from the URL>`, where `<cache>` is
`$FAIRSEQ2_CACHE_DIR`, else `$XDG_CACHE_HOME/fairseq2/assets`, else `~/.cache/fairseq2/assets`.
User cards live in `$FAIRSEQ2_USER_ASSET_DIR`, else `$XDG_CONFIG_HOME/fairseq2/assets`, else
`~/.config/fairseq2/assets` (YAML files, one or more cards each, separated by `---`).

SONAR's own cards (sonar-space 0.5, `sonar/cards/*.yaml`) are not installed here, so the URIs of
the cards the study uses are listed below: `text_sonar_basic_encoder` (checkpoint + NLLB
SentencePiece tokenizer) and `sonar_speech_encoder_<lang>` (`spenc.eng.pt` for English,
`spenc.v3ap.<lang>.pt` / `spenc.v5ap.<lang>.pt` for the others). A name is resolved only if the
downloaded file is already in the cache: nothing is ever downloaded here.
"""

from __future__ import annotations

import os
from hashlib import sha1
from pathlib import Path
from urllib.parse import unquote, urlparse

SONAR_URL = "https://dl.fbaipublicfiles.com/SONAR"
TEXT_CARDS = {
    "text_sonar_basic_encoder": (f"{SONAR_URL}/sonar_text_encoder.pt",
                                 f"{SONAR_URL}/sentencepiece.source.256000.model"),
}
SPEECH_CARD_PREFIX = "sonar_speech_encoder_"


def cache_dir() -> Path:
    """fairseq2's asset cache directory (see module docstring)."""
    env = os.environ.get("FAIRSEQ2_CACHE_DIR")
    if env:
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    if xdg:
        return Path(xdg).expanduser() / "fairseq2" / "assets"
    return Path("~/.cache/fairseq2/assets").expanduser()


def user_card_dir() -> Path:
    """fairseq2's user asset-card directory (see module docstring)."""
    env = os.environ.get("FAIRSEQ2_USER_ASSET_DIR")
    if env:
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_CONFIG_HOME")
    if xdg:
        return Path(xdg).expanduser() / "fairseq2" / "assets"
    return Path("~/.config/fairseq2/assets").expanduser()


def asset_dir(uri: str, root: Path | None = None) -> Path:
    """Where fairseq2 0.8 keeps the download of `uri`."""
    return (root or cache_dir()) / sha1(uri.encode()).hexdigest()[:24]


def cached_download(uri: str, root: Path | None = None) -> Path | None:
    """The cached file for `uri` (its URL file name inside the asset directory), or None."""
    folder = asset_dir(uri, root)
    name = unquote(Path(urlparse(uri).path).name)
    candidate = folder / name
    if candidate.is_file():
        return candidate
    if folder.is_dir():  # redirects can rename the file: take the only file there
        files = [p for p in folder.iterdir() if p.is_file()]
        if len(files) == 1:
            return files[0]
    return None


def speech_urls(lang: str) -> list[str]:
    """Candidate checkpoint URLs of `sonar_speech_encoder_<lang>`."""
    if lang == "eng":
        return [f"{SONAR_URL}/spenc.eng.pt"]
    return [f"{SONAR_URL}/spenc.v3ap.{lang}.pt", f"{SONAR_URL}/spenc.v5ap.{lang}.pt",
            f"{SONAR_URL}/spenc.{lang}.pt"]


def user_cards() -> dict[str, tuple[dict, Path]]:
    """Cards in the user asset directory: name -> (card, directory of its file)."""
    import yaml

    found: dict[str, tuple[dict, Path]] = {}
    root = user_card_dir()
    if not root.is_dir():
        return found
    for f in sorted(root.rglob("*.y*ml")):
        try:
            docs = list(yaml.safe_load_all(f.read_text(encoding="utf-8")))
        except (OSError, yaml.YAMLError):
            continue
        for doc in docs:
            if isinstance(doc, dict) and isinstance(doc.get("name"), str):
                found[doc["name"]] = (doc, f.parent)
    return found


def cached_speech_checkpoints(root: Path | None = None) -> dict[str, Path]:
    """Every `spenc.*.pt` already in the cache, by language (from the file name)."""
    root = root or cache_dir()
    out: dict[str, Path] = {}
    if root.is_dir():
        for f in sorted(root.glob("*/spenc.*.pt")):
            out.setdefault(f.name.split(".")[-2], f)
    return out
