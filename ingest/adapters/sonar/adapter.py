"""SONAR as one system: its text encoder and its speech encoders under one model name.

The study compares SONAR's speech and text embeddings of the same sentences (cross-modal
similarity per model), so both modalities must be stored under one `model`. This adapter wraps
`SonarTextAdapter` and `SonarSpeechAdapter` and routes each batch, and every other per-modality
hook of the contract, by modality (`ModalityComposite`); it is chosen for a
directory that holds both (a text checkpoint or card and `spenc.*.pt` files), or for the name
`sonar` when fairseq2's asset cache has `text_sonar_basic_encoder` and at least one speech
encoder. (The two single-modality adapters stay available; ingesting them separately with the
same `--name` gives the same store.)
"""

from __future__ import annotations

from actstore.ingest.adapters.base import ModelInfo
from actstore.ingest.adapters.composite import ModalityComposite
from actstore.ingest.adapters.sonar.speech import SonarSpeechAdapter
from actstore.ingest.adapters.sonar.text import SonarTextAdapter
from actstore.ingest.model_paths import ModelSource


class SonarAdapter(ModalityComposite):
    """SONAR text + speech encoders (see module docstring)."""

    modalities = ("speech", "text")
    priority = 15
    study_layers = SonarTextAdapter.study_layers

    @classmethod
    def recognises(cls, source: ModelSource) -> bool:
        if "text" in source.extra and "speech" in source.extra:
            return True
        return (source.is_dir and SonarTextAdapter.recognises(source)
                and SonarSpeechAdapter.recognises(source))

    @classmethod
    def known_models(cls) -> tuple[str, ...]:
        return ("sonar",)

    @classmethod
    def locate(cls, model: str, cache_dir=None) -> ModelSource | None:
        if model != "sonar":
            return None
        text = SonarTextAdapter.locate("text_sonar_basic_encoder", cache_dir)
        speech = SonarSpeechAdapter.locate("sonar_speech_encoder", cache_dir)
        if text is None or speech is None:
            return None
        return ModelSource(model_id=model, path=speech.path, name="sonar", source=text.source,
                           extra={"text": text, "speech": speech})

    def __init__(self, source: ModelSource, *, name: str | None = None, device: str = "cpu",
                 dtype: str = "float32", options: dict | None = None):
        super().__init__(source, name=name, device=device, dtype=dtype, options=options)
        kw = dict(name=self.model_name, device=device, dtype=dtype, options=options)
        self.text = SonarTextAdapter(source.extra.get("text", source), **kw)
        self.speech = SonarSpeechAdapter(source.extra.get("speech", source), **kw)
        self.parts = {"speech": self.speech, "text": self.text}

    @property
    def info(self) -> ModelInfo:
        text, speech = self.text.info, self.speech.info
        return ModelInfo(model_id=self.source.model_id, name=self.model_name, adapter=self.adapter_label,
                         revision=self.source.revision,
                         random_init=text.random_init or speech.random_init,
                         extra={"family": "sonar", "text": text.extra, "speech": speech.extra})
