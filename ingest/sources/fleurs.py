"""FLEURS read from its raw files (no `datasets` loading script, no FFmpeg).

Why raw: `datasets>=4` refuses the hub's loading script and `datasets` 5 decodes audio with
torchcodec/FFmpeg. The hub repo `google/fleurs` stores, per config (e.g. `en_us`):

    data/{config}/{split}.tsv               split = train | dev | test
    data/{config}/audio/{split}.tar.gz      members `{split}/{file name}` (16 kHz WAV)

TSV, tab-separated, no header; columns: id (the FLORES sentence number: the parallel key),
file name, raw transcription, normalized transcription, phonetic transcription (characters),
num_samples, gender. Trailing columns may be missing; a header row starting with "id" is skipped.

- Root: `data_dir` may be the repo root or its `data/` directory. Without `data_dir`, huggingface_hub
  finds the snapshot in its cache (`$HF_HUB_CACHE`, else `$HF_HOME/hub`): the one `refs/main`
  names, else the newest; the snapshot hash is the source's revision.
- Speech: every recording is kept (FLEURS has several speakers per sentence id; the study picks
  one per id at analysis time). sample_id `fleurs:{config}:{split}:{file name}`. The archive is
  streamed (one member in memory at a time) and reading stops once every wanted file was seen;
  items come in archive order. Audio is decoded with soundfile; other sample rates are resampled
  to 16 kHz and reported (one warning per call with the count), stereo is averaged, corrupt or
  empty audio raises `DataSourceError` naming the member.
- Text: one item per sentence id, the normalized transcription (the raw one if that column is
  missing or empty), sample_id `fleurs:{config}:{split}:{id}`.
- Split: "devtest" (the default of `open_source`) means FLEURS `test`, "validation" means `dev`.
"""

from __future__ import annotations

import hashlib
import logging
import tarfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from actstore.catalogue import Catalogue
from actstore.errors import DataSourceError
from actstore.ingest.items import Item
from actstore.ingest.sources.audio import ResampleTally
from actstore.ingest.sources.base import Entry, Source

log = logging.getLogger(__name__)

FLEURS_SPLITS = ("train", "dev", "test")
_SPLIT_ALIASES = {"devtest": "test", "validation": "dev"}
HUB_REPO = "google/fleurs"
HUB_REPO_DIR = "datasets--google--fleurs"
_DOWNLOAD_HINT = (
    "download it with `hf download google/fleurs --repo-type dataset --include 'data/{config}/*'` "
    "or pass --data-dir with a local copy"
)


@dataclass(frozen=True)
class FleursRow:
    """One TSV row: a recording of sentence `sentence_id`."""

    line: int
    sentence_id: int
    file_name: str
    raw: str
    normalized: str


def find_fleurs_root(data_dir: str | Path | None = None, revision: str | None = None) -> tuple[Path, str | None]:
    """(the directory holding `{config}/`, snapshot hash or None), from `data_dir` or the hub cache."""
    if data_dir is not None:
        root = Path(data_dir)
        if not root.is_dir():
            raise DataSourceError(f"FLEURS directory {root} does not exist; pass the google/fleurs repo or its data/ directory.")
        snapshot = root.name if root.parent.name == "snapshots" else None
        if (root / "data").is_dir():
            root = root / "data"
        elif root.name == "data" and root.parent.parent.name == "snapshots":
            snapshot = root.parent.name
        return root, snapshot
    snap = _hub_snapshot(revision)
    return snap / "data", snap.name


def _hub_snapshot(revision: str | None) -> Path:
    """The cached google/fleurs snapshot, found by huggingface_hub (never downloads): `revision`, else
    the one `refs/main` names, else (a cache without refs) the newest. The cache directory is
    huggingface_hub's own ($HF_HUB_CACHE, else $HF_HOME/hub, read when it is imported)."""
    from huggingface_hub import constants, scan_cache_dir, snapshot_download
    from huggingface_hub.errors import CacheNotFound, LocalEntryNotFoundError

    try:
        from huggingface_hub.errors import IncompleteSnapshotError
    except ImportError:  # older huggingface_hub: it does not check snapshots for completeness
        IncompleteSnapshotError = LocalEntryNotFoundError  # noqa: N806 (never raised as such below)

    repo_dir = Path(constants.HF_HUB_CACHE) / HUB_REPO_DIR
    try:
        return Path(snapshot_download(HUB_REPO, repo_type="dataset", revision=revision, local_files_only=True))
    except IncompleteSnapshotError as exc:  # the usual copy holds only some configs (`--include`)
        return Path(exc.snapshot_path)
    except LocalEntryNotFoundError:
        if revision is not None:
            raise DataSourceError(f"FLEURS revision {revision} is not in the HF cache ({repo_dir / 'snapshots'}); "
                                  "download it or drop the revision.") from None
    try:  # no refs/main: the newest snapshot
        repos = [r for r in scan_cache_dir(constants.HF_HUB_CACHE).repos
                 if r.repo_id == HUB_REPO and r.repo_type == "dataset"]
    except CacheNotFound:
        repos = []
    revisions = [rev for r in repos for rev in r.revisions]
    if not revisions:
        raise DataSourceError(f"FLEURS is not in the HF cache ({repo_dir / 'snapshots'} has no snapshot); "
                              + _DOWNLOAD_HINT.format(config="CONFIG") + ".")
    return Path(max(revisions, key=lambda rev: rev.last_modified).snapshot_path)


def read_fleurs_tsv(path: Path) -> list[FleursRow]:
    """Parse a FLEURS TSV (see module doc); malformed rows raise naming file and line."""
    rows = []
    with open(path, encoding="utf-8", newline="") as fh:
        for number, line in enumerate(fh, start=1):
            line = line.rstrip("\r\n")
            if not line.strip():
                continue
            cols = line.split("\t")
            if number == 1 and cols[0].strip().lower() == "id":
                continue
            if len(cols) < 2 or not cols[1].strip():
                raise DataSourceError(
                    f"FLEURS file {path} line {number} has no file name column; restore the TSV "
                    "(columns: id, file name, raw transcription, normalized transcription, ...)."
                )
            try:
                sentence_id = int(cols[0])
            except ValueError:
                raise DataSourceError(
                    f"FLEURS file {path} line {number} has a non-integer id {cols[0]!r}; restore the TSV."
                ) from None
            raw = cols[2].strip() if len(cols) > 2 else ""
            norm = cols[3].strip() if len(cols) > 3 else ""
            rows.append(FleursRow(number, sentence_id, cols[1].strip(), raw, norm))
    if not rows:
        raise DataSourceError(f"FLEURS file {path} has no rows; restore or re-download it.")
    return rows


class FleursSource(Source):
    """FLEURS speech (all recordings) and transcriptions per catalogue language (`fleurs_config`)."""

    name = "fleurs"

    def __init__(self, catalogue: Catalogue, data_dir: str | Path | None = None, split: str = "devtest",
                 *, revision: str | None = None):
        fleurs_split = _SPLIT_ALIASES.get(split, split)
        if fleurs_split not in FLEURS_SPLITS:
            raise DataSourceError(f"FLEURS has no split {split!r}; use train, dev or test (devtest means test).")
        self.catalogue = catalogue
        self.split = fleurs_split
        self.root, self._snapshot = find_fleurs_root(data_dir, revision)
        self._langs = sorted(
            lang.code for lang in catalogue
            if lang.fleurs_config and self._tsv(lang.fleurs_config).is_file()
        )
        self._rows: dict[str, list[FleursRow]] = {}
        self._revision: str | None = None

    def _config(self, lang: str) -> str:
        return self.catalogue.get(lang).fleurs_config

    def _tsv(self, config: str) -> Path:
        return self.root / config / f"{self.split}.tsv"

    def _archive(self, config: str) -> Path:
        return self.root / config / "audio" / f"{self.split}.tar.gz"

    def revision(self) -> str | None:
        """The hub snapshot hash; for a plain directory, `tsv-sha256:{16 hex}` over the TSVs."""
        if self._snapshot:
            return self._snapshot
        if self._revision is None:
            h = hashlib.sha256()
            for code in self._langs:
                path = self._tsv(self._config(code))
                h.update(f"{self._config(code)}/{path.name}".encode("utf-8") + b"\0" + path.read_bytes())
            self._revision = f"tsv-sha256:{h.hexdigest()[:16]}"
        return self._revision

    def languages(self) -> list[str]:
        return list(self._langs)

    def modalities(self, lang: str) -> list[str]:
        return ["speech", "text"] if lang in self._langs else []

    def rows(self, lang: str) -> list[FleursRow]:
        """The TSV rows of `lang` (one per recording), parsed once."""
        if lang not in self._rows:
            if lang not in self._langs:
                raise DataSourceError(
                    f"FLEURS in {self.root} has no {self.split} data for {lang!r}; "
                    + _DOWNLOAD_HINT.format(config=self._config(lang) if lang in self.catalogue else "CONFIG")
                    + "."
                )
            self._rows[lang] = read_fleurs_tsv(self._tsv(self._config(lang)))
        return self._rows[lang]

    def texts(self, lang: str) -> dict[int, str]:
        out: dict[int, str] = {}
        tsv = self._tsv(self._config(lang))
        for row in self.rows(lang):
            text = row.normalized or row.raw
            if row.sentence_id in out:
                continue
            if not text:
                raise DataSourceError(
                    f"FLEURS file {tsv} line {row.line} has an empty transcription; restore the TSV."
                )
            out[row.sentence_id] = text
        return out

    def _entries(self, lang: str, modality: str) -> list[Entry]:
        config = self._config(lang)
        prefix = f"fleurs:{config}:{self.split}:"
        if modality == "text":
            return [Entry(i, f"{prefix}{i}", text) for i, text in sorted(self.texts(lang).items())]
        seen: set[str] = set()
        entries = []
        for row in self.rows(lang):
            if row.file_name in seen:
                continue  # a repeated row names the same recording: one item
            seen.add(row.file_name)
            entries.append(Entry(row.sentence_id, prefix + row.file_name, row.file_name))
        return entries

    def _load(self, lang: str, modality: str, entries: list[Entry]) -> Iterator[Item]:
        if modality == "text":
            return (Item(e.sentence_id, lang, "text", e.sample_id, self.split, text=e.ref) for e in entries)
        archive = self._archive(self._config(lang))
        if not archive.is_file():
            raise DataSourceError(
                f"FLEURS audio archive {archive} does not exist; "
                + _DOWNLOAD_HINT.format(config=self._config(lang)) + "."
            )
        return self._speech(lang, archive, entries)

    def _speech(self, lang: str, archive: Path, entries: list[Entry]) -> Iterator[Item]:
        wanted = {e.ref: e for e in entries}
        try:
            with ResampleTally("FLEURS", lang, archive) as tally, tarfile.open(archive, mode="r|gz") as tar:
                for member in tar:
                    if not wanted:
                        break
                    base = member.name.rsplit("/", 1)[-1]
                    entry = wanted.pop(base, None)
                    if entry is None or not member.isfile():
                        if entry is not None:
                            wanted[base] = entry
                        continue
                    fh = tar.extractfile(member)
                    data = fh.read() if fh is not None else b""
                    audio = tally.decode(data, name=f"{member.name} in {archive}")
                    yield Item(entry.sentence_id, lang, "speech", entry.sample_id, self.split, audio=audio)
        except (tarfile.TarError, EOFError, zlib.error, OSError) as exc:
            raise DataSourceError(
                f"FLEURS audio archive {archive} is corrupt or truncated ({exc}); download it again."
            ) from None
        if wanted:
            missing = sorted(wanted)
            raise DataSourceError(
                f"FLEURS audio archive {archive} lacks {len(missing)} file(s) listed in "
                f"{self._tsv(self._config(lang)).name} (e.g. {', '.join(missing[:3])}); download the archive again."
            )
