"""SONAR (fairseq2): text encoder, per-language speech encoders, and both as one system.

- `adapter`: `SonarAdapter`, text + speech under one model name (entry point `sonar`);
- `text`, `speech`: the single-modality adapters (`sonar-text`, `sonar-speech`);
- `speech_model`: the speech encoder (w2v-BERT conformer + attention pooler) in torch;
- `checkpoint`: fairseq2 asset cards and checkpoint reading;
- `fbank`: the speech front end (Kaldi fbank, standardisation, frame stacking);
- `tiny`: tiny random-initialised models in the published formats.
"""
