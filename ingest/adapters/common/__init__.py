"""What several model families share, one module per job.

- `hooks`: forward hooks that capture a module's output (`Capture`);
- `hf`: transformers loading and the masked-mean pooling base (`HFAdapter`, `quiet_transformers`);
- `kaldi_fbank`: the Kaldi log-mel filterbank, in the two variants the references compute;
- `fairseq2_assets`: fairseq2's asset cards and download cache (SONAR);
- `nllb_langs`: NLLB-200's language codes (SONAR's text tokenizer, its tiny builder);
- `tiny`: what every tiny random-initialised model builder shares.
"""
