"""Qwen2-Audio's prompts: the chat format, how one is rendered and how a batch of them is padded.

The LLM sees one prompt per row (see `adapter` for the modes): the audio slot expanded to as many
audio tokens as the tower yields for the clip (`audio_token_count`), and the sentence where the
instruction goes. `render` also returns the sentence's character span, from which
`text_pool="sentence"` finds the sentence's own tokens.
"""

from __future__ import annotations

import string
from dataclasses import dataclass

import torch

#: Qwen2-Audio's chat format (the processor's default chat template, default system message,
#: one user turn, the generation prompt); `{audio}` is `AUDIO_SLOT`, `{text}` the sentence
PROMPT_TEMPLATE = ("<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n"
                   "<|im_start|>user\n{audio}{text}<|im_end|>\n<|im_start|>assistant\n")
#: how the chat template writes one audio (the processor expands the audio token to n copies)
AUDIO_SLOT = "Audio 1: {bos}{audio}{eos}\n"


def audio_token_count(n_samples: int, *, hop_length: int = 160, window_frames: int = 3000) -> int:
    """Audio tokens (= projector positions) for a clip of `n_samples` (`adapter`'s docstring)."""
    mel = min(-(-n_samples // hop_length), window_frames)
    tower = (mel - 1) // 2 + 1
    return (tower - 2) // 2 + 1


@dataclass
class Prompts:
    """One tokenised, right-padded batch of prompts and the masks the points pool over."""

    input_ids: torch.Tensor           # [B, T]
    attention_mask: torch.Tensor      # [B, T] long
    audio: torch.Tensor               # [B, T] bool, audio-token positions
    text: torch.Tensor                # [B, T] bool, positions pooled for text points
    features: torch.Tensor | None     # [B, mel bins, window] or None (no audio)
    feature_mask: torch.Tensor | None  # [B, window] long
    tower_len: torch.Tensor | None    # [B] valid tower positions
    token_len: torch.Tensor | None    # [B] audio tokens
    target: torch.Tensor | None = None  # [B, T] bool, target-token positions (interventions)


def template_fields(template: str) -> set[str]:
    """The format fields of a template string (a valid one has exactly {audio} and {text})."""
    return {f for _, f, _, _ in string.Formatter().parse(template) if f is not None}


def render(template: str, audio_slot: str, audio_token: str, audio_tokens: int,
           text: str) -> tuple[str, tuple[int, int]]:
    """The prompt string and the character span of `text` in it."""
    audio = audio_slot.replace(audio_token, audio_token * audio_tokens) if audio_tokens else ""
    out, span = "", (0, 0)
    for literal, field, _, _ in string.Formatter().parse(template):
        out += literal
        if field == "audio":
            out += audio
        elif field == "text":
            span = (len(out), len(out) + len(text))
            out += text
    return out, span


def pad_rows(rows: list[list[int]], spans: list[list[bool]], pad: int):
    """Right-pad token rows: input_ids [B, T], attention_mask [B, T] long, sentence [B, T] bool."""
    n = len(rows)
    width = max(len(r) for r in rows)
    ids = torch.full((n, width), pad, dtype=torch.long)
    attn = torch.zeros((n, width), dtype=torch.long)
    sentence = torch.zeros((n, width), dtype=torch.bool)
    for b, (r, s) in enumerate(zip(rows, spans)):
        ids[b, : len(r)] = torch.tensor(r)
        attn[b, : len(r)] = 1
        sentence[b, : len(s)] = torch.tensor(s, dtype=torch.bool)
    return ids, attn, sentence
