"""Qwen2-Audio's side of the intervention protocol (`Adapter.intervention_sites`, `target_loglik`,
`generate`; `first_step_language_probs` is None: no language-ID step), mixed into the adapter.

Qwen2-Audio is decoder-only: the "decoder" is the LLM itself, reading the prompt and then the
answer. The prompt is the adapter's chat template (`prompts.py`, option `template`) with the
item's source in it, and the target is the assistant's answer:
- conditioning "speech": the audio-only prompt (the audio slot holds the clip, the text slot is
  empty), as the separate mode's speech prompt;
- conditioning "text": the text-only prompt (no audio slot, the item's `text` where the
  instruction goes). The chat template allows both; neither carries an instruction, so what is
  measured is how well the LLM continues the source with the target, not an instructed task.
- `target_loglik`: the prompt followed by the target's tokens and `<|im_end|>`, teacher-forced;
  scored are the target's tokens and the `<|im_end|>` (each predicted from what precedes it).
  Rows are right-padded and the LLM is causal, so a padded batch gives each item's numbers.
- `generate`: greedy (transformers' `generate` with its KV cache, `do_sample=False`), one item
  at a time (prompts differ in length; alone is what a batch must equal), at most
  `max_new_tokens`, stopping at `<|im_end|>` or `<|endoftext|>`.
Sites: the LLM's sites (`sites.py`); `speech.llm.L{j}.ffn` and `text.llm.L{j}.ffn` name the same
module, and a clamp holds its units at EVERY position (audio, prompt and answer): the name only
says which stored rows chose the units.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

from actstore.errors import DataSourceError
from actstore.ingest.adapters.base import MAX_NEW_TOKENS
from actstore.ingest.adapters.common.clamps import Clamp, clamped
from actstore.ingest.adapters.common.decode import target_scores
from actstore.ingest.adapters.common.hf import quiet_transformers
from actstore.ingest.adapters.common.hooks import Capture
from actstore.ingest.items import Item

END_OF_TURN = "<|im_end|>"
END_OF_TEXT = "<|endoftext|>"


class Qwen2AudioInterventions:
    """The protocol's methods; the adapter (`Qwen2AudioAdapter`) provides the parts they read."""

    conditionings = ("speech", "text")

    def intervention_sites(self):
        return dict(self._sites)

    def _source_prompts(self, items: Sequence[Item], conditioning: str, targets=None):
        self.check_conditioning(conditioning)
        if conditioning == "text":
            bad = [f"{it.lang}/{it.sample_id}" for it in items if not (it.text or "").strip()]
            if bad:
                raise DataSourceError(f"Item(s) {bad[:5]} have no text to condition on; pass text items "
                                      "or condition on speech.")
            return self._prompts(None, items, targets)
        return self._prompts(items, None, targets)

    def _model_inputs(self, batch) -> dict:
        kwargs = dict(input_ids=batch.input_ids, attention_mask=batch.attention_mask)
        if batch.features is not None:
            kwargs.update(input_features=batch.features, feature_attention_mask=batch.feature_mask)
        return kwargs

    def target_loglik(self, items: Sequence[Item], clamps: Sequence[Clamp] = (),
                      conditioning: str = "speech") -> tuple[np.ndarray, np.ndarray]:
        """Per item: the summed log-probability of its target tokens and their count (module doc)."""
        missing = [f"{it.lang}/{it.sample_id}" for it in items if not it.target]
        if missing:
            raise DataSourceError(f"Item(s) {missing[:5]} have no target sentence; interventions score one.")
        tok = self.tokenizer
        end = tok.convert_tokens_to_ids(END_OF_TURN)
        batch = self._source_prompts(items, conditioning,
                                     [tok(it.target)["input_ids"] + [end] for it in items])
        labels = torch.cat([batch.input_ids[:, 1:], batch.input_ids[:, :1]], 1)  # position t predicts t + 1
        scored = torch.cat([batch.target[:, 1:], torch.zeros_like(batch.target[:, :1])], 1)
        with torch.no_grad(), clamped(self._sites, clamps), Capture() as cap:
            cap.output_of(self.llm, "h", stop=True)  # after the final norm, before the LM head
            hidden = cap.run(lambda: self.model(use_cache=False, **self._model_inputs(batch)))["h"]
            return target_scores(self.model.get_output_embeddings(), hidden, labels, scored)

    def generate(self, items: Sequence[Item], clamps: Sequence[Clamp] = (),
                 max_new_tokens: int = MAX_NEW_TOKENS, conditioning: str = "speech") -> list[str]:
        """Greedy answers, one item at a time (module doc)."""
        tok = self.tokenizer
        ends = [tok.convert_tokens_to_ids(END_OF_TURN), tok.convert_tokens_to_ids(END_OF_TEXT)]
        out = []
        with torch.no_grad(), clamped(self._sites, clamps), quiet_transformers():
            for it in items:
                batch = self._source_prompts([it], conditioning)
                ids = self.model.generate(**self._model_inputs(batch), max_new_tokens=max_new_tokens,
                                          do_sample=False, num_beams=1, eos_token_id=ends,
                                          pad_token_id=ends[1])
                new = [t for t in ids[0, batch.input_ids.shape[1]:].tolist() if t not in ends]
                out.append(tok.decode(new, skip_special_tokens=True).strip())
        return out
