"""SALMONN (Whisper + BEATs -> window Q-Former -> Vicuna with LoRA), from its released files.

- `adapter`: `SalmonnAdapter` (entry point `salmonn`), paired speech + text in one forward;
- `model`: the assembled model and its audio path;
- `qformer`: the window-level Q-Former;
- `beats`: the BEATs audio encoder and its fbank front end;
- `checkpoint`: the decode config, SALMONN's checkpoint and the LLM's LoRA;
- `tiny`: a tiny random-initialised SALMONN in the released formats.
"""
