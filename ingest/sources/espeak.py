"""Speech synthesised with espeak-ng, cached on disk, run as parallel subprocesses.

Why espeak-ng: it is a small Debian package with voices for 33 of the study's 36 languages, so
the offline demo gets parallel speech for FLORES text without downloading FLEURS. It is robotic
speech, not a substitute for FLEURS in the study's numbers.

- Synthesis: `espeak-ng -v VOICE --stdout` with the sentence on stdin (so text starting with
  "-" is never read as an option; newlines become spaces so the sentence is one utterance).
  espeak-ng writes 16-bit WAV at 22050 Hz; we resample to 16 kHz with a polyphase filter,
  up/down = 320/441 exactly (22050 * 320/441 = 16000), and keep float32.
- Cache: espeak-ng's own 16-bit 22050 Hz output, losslessly as FLAC, one file per (voice,
  espeak-ng version, text) at `{cache_dir}/{voice}/{sha256}.flac`; the default cache_dir is
  `$ACTSTORE_CACHE_DIR/espeak`, else `$XDG_CACHE_HOME/actstore/espeak` (`~/.cache/actstore/espeak`). Why not the 16 kHz float32
  result: measured on a 9 s German sentence, FLAC is 146 KB against 413 KB as .npy (the full
  33-language devtest: ~5 GB instead of ~14 GB), and decoding + resampling costs ~6 ms per
  sentence, nothing beside a model forward; the output is bit-identical either way.
  Files are written to a temporary name in the same directory and renamed, so an interrupted
  run never leaves a half-written file; an unreadable cache file is treated as a miss and
  rewritten. A second run does no synthesis.
- Parallelism: a thread pool of `workers` (default 2) subprocess calls, at most
  `2 * workers` sentences in flight, results yielded in input order: memory stays bounded by
  a few waveforms however many sentences are asked for. (~19 ms per sentence per process.)
"""

from __future__ import annotations

import hashlib
import io
import os
import re
import shutil
import subprocess
import tempfile
import threading
from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import numpy as np
import soundfile as sf

from actstore.errors import DataSourceError
from actstore.ingest.items import SAMPLE_RATE
from actstore.cache import cache_dir
from actstore.ingest.sources.audio import resample

_TIMEOUT_S = 120


def default_cache_dir() -> Path:
    """`espeak/` under actstore's cache root (`actstore.cache.cache_dir`: $ACTSTORE_CACHE_DIR, ...)."""
    return cache_dir("espeak")


class EspeakSynthesizer:
    """Text -> 16 kHz float32 speech with espeak-ng; cached and parallel (see module doc).

    `synthesised` and `cache_hits` count what happened since construction (thread-safe), so a
    caller can report "synthesised 120, cached 880".
    """

    def __init__(
        self,
        cache_dir: str | Path | None = None,
        *,
        binary: str = "espeak-ng",
        workers: int = 2,
    ):
        if workers < 1:
            raise DataSourceError(f"espeak-ng workers must be >= 1, got {workers}; pass a positive number.")
        self.cache_dir = Path(cache_dir) if cache_dir is not None else default_cache_dir()
        self.binary = binary
        self.workers = int(workers)
        self.synthesised = 0
        self.cache_hits = 0
        self._lock = threading.Lock()
        self._path: str | None = None
        self._version: str | None = None
        self._voice_ok: dict[str, bool] = {}

    # -- the executable ------------------------------------------------------------------

    def available(self) -> bool:
        """True if the espeak-ng executable can be found."""
        return shutil.which(self.binary) is not None

    def _exe(self) -> str:
        if self._path is None:
            found = shutil.which(self.binary)
            if found is None:
                raise DataSourceError(
                    f"espeak-ng is not installed (no {self.binary!r} on PATH); install it with "
                    "`apt-get install espeak-ng`, or use a source with recorded speech (fleurs, manifest)."
                )
            self._path = found
        return self._path

    @property
    def version(self) -> str:
        """espeak-ng's version string, e.g. "1.51" (part of the cache key and the provenance)."""
        if self._version is None:
            out = subprocess.run([self._exe(), "--version"], capture_output=True, text=True,
                                 timeout=_TIMEOUT_S)
            match = re.search(r"text-to-speech:\s*(\S+)", out.stdout)
            self._version = match.group(1) if match else (out.stdout.strip() or "unknown")
        return self._version

    def has_voice(self, voice: str) -> bool:
        """True if espeak-ng accepts `voice` (probed once: `espeak-ng -q -v VOICE a`)."""
        if not voice:
            return False
        if voice not in self._voice_ok:
            probe = subprocess.run([self._exe(), "-q", "-v", voice, "a"], capture_output=True,
                                   timeout=_TIMEOUT_S)
            self._voice_ok[voice] = probe.returncode == 0
        return self._voice_ok[voice]

    def check(self, voice: str) -> None:
        """Raise `DataSourceError` unless espeak-ng is installed and has `voice`."""
        self._exe()
        _ = self.version  # resolve once here, not concurrently in the worker threads
        if not self.has_voice(voice):
            raise DataSourceError(
                f"espeak-ng {self.version} has no voice {voice!r}; install espeak-ng-data or clear "
                "espeak_voice for that language in your languages CSV."
            )

    # -- one sentence --------------------------------------------------------------------

    def cache_path(self, text: str, voice: str) -> Path:
        """Where the waveform of (voice, espeak-ng version, text) is cached."""
        key = "\0".join([voice, self.version, text]).encode("utf-8")
        safe_voice = re.sub(r"[^A-Za-z0-9._+-]", "_", voice)
        return self.cache_dir / safe_voice / f"{hashlib.sha256(key).hexdigest()}.flac"

    def synthesize(self, text: str, voice: str) -> np.ndarray:
        """Speech for `text` in `voice`: from the cache, else espeak-ng (then cached)."""
        path = self.cache_path(text, voice)
        cached = _read_cached(path)
        if cached is not None:
            with self._lock:
                self.cache_hits += 1
            return resample(*cached, SAMPLE_RATE)
        wav = self._run(text, voice)
        pcm, sr = sf.read(io.BytesIO(wav), dtype="int16", always_2d=True)
        _write_atomic(path, pcm, sr)
        with self._lock:
            self.synthesised += 1
        data, sr = sf.read(io.BytesIO(wav), dtype="float32", always_2d=True)
        return resample(data.mean(axis=1), sr, SAMPLE_RATE)

    def _run(self, text: str, voice: str) -> bytes:
        """espeak-ng's WAV output for one sentence (validated: decodable, not empty)."""
        utterance = " ".join(text.split())
        if not utterance:
            raise DataSourceError("Cannot synthesise an empty sentence; remove the empty text line.")
        proc = subprocess.run(
            [self._exe(), "-v", voice, "--stdout"],
            input=utterance.encode("utf-8"), capture_output=True, timeout=_TIMEOUT_S,
        )
        what = f"voice {voice!r} on {utterance[:40]!r}"
        if proc.returncode != 0 or not proc.stdout:
            err = proc.stderr.decode("utf-8", "replace").strip() or f"exit code {proc.returncode}"
            raise DataSourceError(
                f"espeak-ng failed for {what} ({err}); check the voice with `espeak-ng --voices`."
            )
        try:
            data, sr = sf.read(io.BytesIO(proc.stdout), dtype="float32", always_2d=True)
        except (sf.LibsndfileError, RuntimeError) as exc:
            raise DataSourceError(
                f"espeak-ng wrote unreadable audio for {what} ({exc}); reinstall espeak-ng."
            ) from None
        if data.shape[0] == 0:
            raise DataSourceError(
                f"espeak-ng produced no audio for {what}; check the sentence contains speakable text."
            )
        return proc.stdout

    # -- many sentences ------------------------------------------------------------------

    def synthesize_many(self, texts: Iterable[str], voice: str) -> Iterator[np.ndarray]:
        """Waveforms for `texts`, in order, synthesised `workers` at a time with bounded memory.

        At most `2 * workers` sentences are pending or finished-but-not-yielded at any time;
        closing the iterator early cancels what has not started.
        """
        self.check(voice)
        window = 2 * self.workers
        pending: deque[Future] = deque()
        pool = ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix="espeak")
        try:
            for text in texts:
                pending.append(pool.submit(self.synthesize, text, voice))
                if len(pending) >= window:
                    yield pending.popleft().result()
            while pending:
                yield pending.popleft().result()
        finally:
            for fut in pending:
                fut.cancel()
            pool.shutdown(wait=True, cancel_futures=True)


def _read_cached(path: Path) -> tuple[np.ndarray, int] | None:
    """(mono float32 at the file's rate, rate), or None if absent or unreadable (re-synthesise)."""
    if not path.is_file():
        return None
    try:
        data, sr = sf.read(str(path), dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError, ValueError):
        return None
    if data.shape[0] == 0:
        return None
    return data.mean(axis=1), int(sr)


def _write_atomic(path: Path, pcm: np.ndarray, sr: int) -> None:
    """Write FLAC to a temporary file in the same directory, then rename (atomic on POSIX)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".flac")
    try:
        with os.fdopen(fd, "wb") as fh:
            sf.write(fh, pcm, sr, format="FLAC", subtype="PCM_16")
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
