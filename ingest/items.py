"""The unit that flows from a source into a model adapter."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

SAMPLE_RATE = 16_000
MODALITIES = ("speech", "text")


@dataclass(frozen=True)
class Item:
    """One sentence in one language and one modality.

    `sentence_id` is the parallel key (the FLORES sentence number; FLEURS `id`): the same id in
    two languages or modalities is the same sentence. `sample_id` identifies this recording or
    text item and is unique within (lang, modality): FLEURS has several speakers per sentence id.
    `audio` is mono float32 at 16 kHz for speech; `text` is set for text.
    `target` / `target_lang`: the sentence a teacher-forced decoder reads (the transcription, or
    the parallel sentence in another language), set only when decoder points are requested.
    """

    sentence_id: int
    lang: str
    modality: str
    sample_id: str
    split: str
    text: str | None = None
    audio: np.ndarray | None = field(default=None, repr=False, compare=False)
    target: str | None = None
    target_lang: str | None = None

    @property
    def length(self) -> int:
        """Length used for bucketing batches: samples for speech, characters for text."""
        if self.modality == "speech":
            return 0 if self.audio is None else int(self.audio.shape[0])
        return len(self.text or "")
