"""Shared helpers for the adapter tests: tiny models, synthetic audio, items.

The tiny-model fixtures (`tiny_seamless_dir`, `tiny_whisper_dir`, `tiny_bert_dir`) live in
conftest.py, built once per session.
"""

from __future__ import annotations


import numpy as np

from actstore.ingest.items import Item
from actstore.ingest.sources.flores import shipped_flores_dir

FLORES = shipped_flores_dir() / "devtest"
CORPUS_FILES = ["eng_Latn", "fra_Latn", "arb_Arab", "hin_Deva", "zho_Hans", "amh_Ethi"]


def flores_lines(flores_code: str, n: int) -> list[str]:
    """The first n sentences of a shipped FLORES devtest file."""
    lines = (FLORES / f"{flores_code}.devtest").read_text(encoding="utf-8").splitlines()
    return lines[:n]


def small_corpus() -> list[str]:
    """60 sentences in six scripts: enough to train a test tokenizer in well under a second."""
    return [s for code in CORPUS_FILES for s in flores_lines(code, 10)]


def chirp(n_samples: int, *, f0: float = 200.0, f1: float = 2000.0, seed: int = 0,
          noise: float = 0.01) -> np.ndarray:
    """A deterministic linear chirp plus a little seeded noise: float32 mono at 16 kHz."""
    t = np.arange(n_samples, dtype=np.float64) / 16_000
    dur = max(n_samples / 16_000, 1e-9)
    phase = 2 * np.pi * (f0 * t + (f1 - f0) * t**2 / (2 * dur))
    rng = np.random.default_rng(seed)
    return (0.5 * np.sin(phase) + noise * rng.standard_normal(n_samples)).astype(np.float32)


def speech_items(lengths: list[int], lang: str = "eng") -> list[Item]:
    """Speech items with deterministic chirps of the given lengths (samples at 16 kHz)."""
    return [Item(sentence_id=i, lang=lang, modality="speech", sample_id=f"s{i}", split="devtest",
                 audio=chirp(n, f0=150 + 50 * i, seed=i)) for i, n in enumerate(lengths)]


def text_items(pairs: list[tuple[str, str]]) -> list[Item]:
    """Text items from (lang, text) pairs."""
    return [Item(sentence_id=i, lang=lang, modality="text", sample_id=f"t{i}", split="devtest",
                 text=text) for i, (lang, text) in enumerate(pairs)]


def assert_pairs_equal_alone(adapter, speech: list[Item], text: list[Item], points: list[str],
                             atol=1e-5) -> dict:
    """A paired adapter: the pairs as one padded batch and each pair alone agree at every point."""
    batch = adapter.encode_pairs(speech, text, points)
    for i in range(len(speech)):
        alone = adapter.encode_pairs([speech[i]], [text[i]], points)
        for p in points:
            np.testing.assert_allclose(batch[p].vectors[i], alone[p].vectors[0], atol=atol, rtol=0,
                                       err_msg=f"{p} item {i}")
            assert batch[p].n_frames[i] == alone[p].n_frames[0]
    return batch


def assert_batch_equals_single(adapter, items: list[Item], points: list[str], atol=1e-5) -> dict:
    """Encode `items` as one padded batch and one by one; the pooled vectors must agree."""
    batch = adapter.encode(items, points)
    for i, it in enumerate(items):
        alone = adapter.encode([it], points)
        for p in points:
            np.testing.assert_allclose(batch[p].vectors[i], alone[p].vectors[0], atol=atol,
                                       rtol=0, err_msg=f"{p} item {i}")
            assert batch[p].n_frames[i] == alone[p].n_frames[0]
    return batch


def write_manifest(root, sentences: dict[str, list[str]]):
    """A manifest CSV in `root`: per language, sentence i (from 1) as text and as speech (noise of
    0.4 + 0.1 i seconds, seeded per language and sentence); returns the CSV's path."""
    import soundfile as sf

    rows = ["sentence_id,lang,modality,text,audio"]
    for j, (lang, texts) in enumerate(sentences.items()):
        for i, text in enumerate(texts, 1):
            wav = root / f"{lang}{i}.wav"
            noise = 0.1 * np.random.default_rng(100 * j + i).standard_normal(int((0.4 + 0.1 * i) * 16000))
            sf.write(wav, noise.astype(np.float32), 16000, subtype="PCM_16")
            text = text.replace('"', "'")
            rows += [f'{i},{lang},speech,"{text}",{wav.name}', f'{i},{lang},text,"{text}",']
    (root / "m.csv").write_text("\n".join(rows) + "\n")
    return root / "m.csv"


def real_whisper_base(*, speech: bool = True):
    """The converted real Whisper base directory, or a pytest skip saying what is missing (the
    pinned weight packages; espeak-ng where the test synthesises speech)."""
    import pytest

    from actstore.ingest.convert.weights import WeightsNotInstalledError, whisper_base_dir
    from actstore.ingest.sources.espeak import EspeakSynthesizer

    try:
        path = whisper_base_dir()
    except WeightsNotInstalledError as exc:
        pytest.skip(f"real Whisper base weights not installed: {exc}")
    if speech and not EspeakSynthesizer().available():
        pytest.skip("espeak-ng is not installed (apt-get install espeak-ng)")
    return path
