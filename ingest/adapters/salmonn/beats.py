"""BEATs (Chen et al. 2022), the audio-event encoder inside SALMONN, written for actstore.

Why our own: the reference code (microsoft/unilm `beats/`, vendored by SALMONN) is not a
package, imports torchaudio, and only needs ~150 lines of torch. This module reads the original
checkpoint format `{'cfg': dict, 'model': state_dict}` (e.g.
`BEATs_iter3_plus_AS2M_finetuned_on_AS2M_cpt2.pt`) and reproduces `BEATs.extract_features(wav,
feature_only=True)`.

The model, as the checkpoint's `cfg` describes it (iter3+ checkpoints):
- Front end (`beats_fbank`): 128-bin kaldi fbank of `wav * 2**15` (25 ms povey window, 10 ms hop,
  no dither, DC removal, pre-emphasis 0.97, power spectrum of a 512-point FFT, log floored at
  float32 eps), computed in float64 like torchaudio's `compliance.kaldi.fbank` on a float64
  waveform (`common.kaldi_fbank.torch_kaldi_fbank`, which says why it is not kaldi-native-fbank),
  then `(x - 15.41663) / (2 * 6.55582)`.
- Patches: Conv2d 16x16 / stride 16 over (time, mel) -> tokens time-major with 8 frequency
  patches per 160 ms (`n_tokens = 8 * floor(frames / 16)`), LayerNorm, Linear to the encoder width.
- Encoder: `x + GELU(conv_pos(x))` (grouped conv, kernel 128, weight norm folded at load time,
  last output frame dropped for an even kernel), LayerNorm, then L post-LN layers with DeepNorm
  residual scaling `alpha = (2L)^(1/4)`:
      x = LN1(alpha * x + Attn(x));  x = LN2(alpha * x + FFN(x))
  (or pre-LN layers with a final LayerNorm when `layer_norm_first`).
- Attention bias: T5-style relative positions, bucketed two-sided (num_buckets/2 per direction,
  exact below num_buckets/4, logarithmic up to max_distance), computed ONCE from layer 0's
  embedding and shared by every layer; each layer gates it per head and query position from the
  projected, unscaled query q: (a, b) = sigmoid(sum over groups of 4 of grep_linear(q)),
  gate = a * (b * grep_a - 1) + 2, bias = gate * position_bias.

Layer drop (`encoder_layerdrop`) and dropout exist only in training; this module is inference
only and has neither. A clip is encoded on its own (batch of one): SALMONN feeds one clip at a
time, and BEATs' padding-mask path would make a padded batch differ from single clips.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from actstore.errors import UnknownModelError
from actstore.ingest.adapters.common.kaldi_fbank import torch_kaldi_fbank

FBANK_MEAN = 15.41663
FBANK_STD = 6.55582


# -- front end -------------------------------------------------------------------------------
def beats_fbank(wav: torch.Tensor) -> torch.Tensor:
    """BEATs' preprocessing of one clip (float waveform in [-1, 1], 16 kHz): [frames, 128] float32.

    Computed in float64 (as the reference does on SALMONN's float64 audio), normalised with
    BEATs' fixed AudioSet statistics, then cast to float32.
    """
    fb = torch_kaldi_fbank(wav.to(torch.float64) * 2**15, num_mel_bins=128)
    return ((fb - FBANK_MEAN) / (2 * FBANK_STD)).to(torch.float32)


# -- config ----------------------------------------------------------------------------------
@dataclass
class BeatsConfig:
    """The `cfg` dict stored in a BEATs checkpoint (defaults are the reference's)."""

    input_patch_size: int = 16
    embed_dim: int = 512
    conv_bias: bool = False
    encoder_layers: int = 12
    encoder_embed_dim: int = 768
    encoder_ffn_embed_dim: int = 3072
    encoder_attention_heads: int = 12
    activation_fn: str = "gelu"
    layer_wise_gradient_decay_ratio: float = 1.0
    layer_norm_first: bool = False
    deep_norm: bool = False
    dropout: float = 0.1
    attention_dropout: float = 0.1
    activation_dropout: float = 0.0
    encoder_layerdrop: float = 0.0
    dropout_input: float = 0.0
    conv_pos: int = 128
    conv_pos_groups: int = 16
    relative_position_embedding: bool = False
    num_buckets: int = 320
    max_distance: int = 1280
    gru_rel_pos: bool = False
    finetuned_model: bool = False
    predictor_dropout: float = 0.1
    predictor_class: int = 527

    @classmethod
    def from_dict(cls, cfg: dict) -> "BeatsConfig":
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in cfg.items() if k in known})

    def to_dict(self) -> dict:
        return {f.name: getattr(self, f.name) for f in fields(self)}


# -- model -----------------------------------------------------------------------------------
def bucket_distances(rel: torch.Tensor, num_buckets: int, max_distance: int) -> torch.Tensor:
    """Bucket of each key - query distance (two-sided T5 bucketing, logs in float32)."""
    half = num_buckets // 2
    buckets = (rel > 0).long() * half
    rel = rel.abs()
    max_exact = half // 2
    large = max_exact + (torch.log(rel.float() / max_exact) / math.log(max_distance / max_exact)
                         * (half - max_exact)).long()
    large = torch.clamp(large, max=half - 1)
    return buckets + torch.where(rel < max_exact, rel, large)


def relative_position_buckets(q_len: int, k_len: int, num_buckets: int, max_distance: int,
                              device=None) -> torch.Tensor:
    """[q_len, k_len] bucket index of the key - query distances."""
    rel = torch.arange(k_len, device=device)[None, :] - torch.arange(q_len, device=device)[:, None]
    return bucket_distances(rel, num_buckets, max_distance)


class BeatsAttention(nn.Module):
    """Self-attention with BEATs' gated relative position bias (see module docstring)."""

    def __init__(self, cfg: BeatsConfig, has_bias_table: bool):
        super().__init__()
        d, h = cfg.encoder_embed_dim, cfg.encoder_attention_heads
        self.num_heads, self.head_dim = h, d // h
        self.q_proj, self.k_proj = nn.Linear(d, d), nn.Linear(d, d)
        self.v_proj, self.out_proj = nn.Linear(d, d), nn.Linear(d, d)
        self.num_buckets, self.max_distance = cfg.num_buckets, cfg.max_distance
        self.relative_attention_bias = (nn.Embedding(cfg.num_buckets, h) if has_bias_table else None)
        self.gru_rel_pos = cfg.gru_rel_pos
        if cfg.gru_rel_pos:
            self.grep_linear = nn.Linear(self.head_dim, 8)
            self.grep_a = nn.Parameter(torch.ones(1, h, 1, 1))

    def position_bias(self, length: int) -> torch.Tensor:
        """[heads, T, T] bias from this layer's bucket table (only layer 0 has one)."""
        b = relative_position_buckets(length, length, self.num_buckets, self.max_distance,
                                      device=self.relative_attention_bias.weight.device)
        return self.relative_attention_bias(b).permute(2, 0, 1)

    def forward(self, x: torch.Tensor, pos_bias: torch.Tensor | None) -> torch.Tensor:
        B, T, _ = x.shape
        split = (B, T, self.num_heads, self.head_dim)
        q = self.q_proj(x).view(split).transpose(1, 2)                       # [B, H, T, hd]
        k = self.k_proj(x).view(split).transpose(1, 2)
        v = self.v_proj(x).view(split).transpose(1, 2)
        bias = None
        if pos_bias is not None:
            bias = pos_bias.unsqueeze(0).to(q.dtype)                         # [1, H, T, T]
            if self.gru_rel_pos:
                g = torch.sigmoid(self.grep_linear(q).view(B, self.num_heads, T, 2, 4).sum(-1))
                a, b = g[..., :1], g[..., 1:]
                bias = (a * (b * self.grep_a - 1.0) + 2.0) * bias           # [B, H, T, T]
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=bias)
        return self.out_proj(out.transpose(1, 2).reshape(B, T, -1))


class BeatsLayer(nn.Module):
    """One encoder layer: post-LN with DeepNorm residual scaling, or pre-LN."""

    def __init__(self, cfg: BeatsConfig, has_bias_table: bool):
        super().__init__()
        d = cfg.encoder_embed_dim
        self.self_attn = BeatsAttention(cfg, has_bias_table)
        self.self_attn_layer_norm = nn.LayerNorm(d)
        self.fc1 = nn.Linear(d, cfg.encoder_ffn_embed_dim)
        self.fc2 = nn.Linear(cfg.encoder_ffn_embed_dim, d)
        self.final_layer_norm = nn.LayerNorm(d)
        self.pre_ln = cfg.layer_norm_first
        self.alpha = math.pow(2 * cfg.encoder_layers, 0.25) if cfg.deep_norm else 1.0
        if cfg.activation_fn != "gelu":
            raise UnknownModelError(f"BEATs activation {cfg.activation_fn!r} is not supported; "
                                    "only the released checkpoints' 'gelu' is.")

    def _ffn(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(F.gelu(self.fc1(x).float()).type_as(x))

    def forward(self, x: torch.Tensor, pos_bias: torch.Tensor | None) -> torch.Tensor:
        if self.pre_ln:
            x = x + self.self_attn(self.self_attn_layer_norm(x), pos_bias)
            return x + self._ffn(self.final_layer_norm(x))
        x = self.self_attn_layer_norm(x * self.alpha + self.self_attn(x, pos_bias))
        return self.final_layer_norm(x * self.alpha + self._ffn(x))


class BeatsEncoder(nn.Module):
    def __init__(self, cfg: BeatsConfig):
        super().__init__()
        d = cfg.encoder_embed_dim
        # weight norm is folded into a plain weight when the checkpoint is read
        self.pos_conv = nn.Conv1d(d, d, cfg.conv_pos, padding=cfg.conv_pos // 2,
                                  groups=cfg.conv_pos_groups)
        self.drop_last = cfg.conv_pos % 2 == 0
        self.layers = nn.ModuleList(
            BeatsLayer(cfg, has_bias_table=cfg.relative_position_embedding and i == 0)
            for i in range(cfg.encoder_layers))
        self.layer_norm = nn.LayerNorm(d)
        self.pre_ln = cfg.layer_norm_first

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        conv = self.pos_conv(x.transpose(1, 2))
        if self.drop_last:
            conv = conv[:, :, :-1]
        x = x + F.gelu(conv).transpose(1, 2)
        if not self.pre_ln:
            x = self.layer_norm(x)
        attn0 = self.layers[0].self_attn
        pos_bias = attn0.position_bias(x.shape[1]) if attn0.relative_attention_bias is not None else None
        for layer in self.layers:
            x = layer(x, pos_bias)
        return self.layer_norm(x) if self.pre_ln else x


class Beats(nn.Module):
    """BEATs feature extractor (`extract_features(..., feature_only=True)`), inference only."""

    def __init__(self, cfg: BeatsConfig):
        super().__init__()
        self.cfg = cfg
        p = cfg.input_patch_size
        self.patch_embedding = nn.Conv2d(1, cfg.embed_dim, kernel_size=p, stride=p, bias=cfg.conv_bias)
        self.layer_norm = nn.LayerNorm(cfg.embed_dim)
        self.post_extract_proj = (nn.Linear(cfg.embed_dim, cfg.encoder_embed_dim)
                                  if cfg.embed_dim != cfg.encoder_embed_dim else None)
        self.encoder = BeatsEncoder(cfg)

    @property
    def width(self) -> int:
        return self.cfg.encoder_embed_dim

    def forward(self, fbank: torch.Tensor) -> torch.Tensor:
        """fbank [B, frames, mel] (from `beats_fbank`) -> tokens [B, 8 * (frames // 16), d]."""
        x = self.patch_embedding(fbank.unsqueeze(1).to(self.patch_embedding.weight.dtype))
        x = x.reshape(x.shape[0], x.shape[1], -1).transpose(1, 2)
        x = self.layer_norm(x)
        if self.post_extract_proj is not None:
            x = self.post_extract_proj(x)
        return self.encoder(x)


def beats_tokens(n_frames: int, patch: int = 16, mel_bins: int = 128) -> int:
    """Tokens BEATs makes from `n_frames` fbank frames: (mel/patch) * floor(frames/patch)."""
    return (mel_bins // patch) * (n_frames // patch)


# -- checkpoint ------------------------------------------------------------------------------
def load_checkpoint(path: str | Path):
    """`torch.load` with the restricted unpickler, memory-mapped when the file allows it.

    Files written before torch 1.6's zip format cannot be memory-mapped; they are read normally.
    """
    try:
        return torch.load(str(path), map_location="cpu", mmap=True, weights_only=True)
    except RuntimeError as exc:
        if "mmap" not in str(exc):
            raise
        return torch.load(str(path), map_location="cpu", weights_only=True)


def _fold_weight_norm(sd: dict, prefix: str) -> None:
    """Replace a weight-normed conv's (g, v) by its weight: g * v / ||v||, norm over dims 0, 1."""
    for g_key, v_key in ((prefix + "weight_g", prefix + "weight_v"),
                         (prefix + "parametrizations.weight.original0",
                          prefix + "parametrizations.weight.original1")):
        if g_key in sd and v_key in sd:
            g, v = sd.pop(g_key).float(), sd.pop(v_key).float()
            sd[prefix + "weight"] = g * v / v.norm(dim=(0, 1), keepdim=True)
            return


def read_beats_checkpoint(path: str | Path) -> tuple[BeatsConfig, dict]:
    """(config, state dict in this module's names) of an original BEATs checkpoint.

    Memory-mapped and restricted-unpickled (`weights_only`): nothing is copied until the weights
    are assigned to the model. Drops what feature extraction never uses (the AudioSet
    `predictor.*` head, the per-layer copies of the shared bias table).
    """
    try:
        ckpt = load_checkpoint(path)
    except Exception as exc:  # noqa: BLE001 - any unreadable file is the same user error
        raise UnknownModelError(f"Cannot read the BEATs checkpoint {path} ({exc}); pass the "
                                "original BEATs .pt file (a dict with 'cfg' and 'model').") from None
    if not (isinstance(ckpt, dict) and "cfg" in ckpt and "model" in ckpt):
        raise UnknownModelError(f"{path} is not an original BEATs checkpoint (no 'cfg'/'model' "
                                "entries); pass e.g. BEATs_iter3_plus_AS2M_finetuned_on_AS2M_cpt2.pt.")
    cfg = BeatsConfig.from_dict(dict(ckpt["cfg"]))
    sd = dict(ckpt["model"])
    _fold_weight_norm(sd, "encoder.pos_conv.0.")
    out = {}
    for k, v in sd.items():
        if k.startswith("predictor.") or k.startswith("predictor_"):
            continue
        if ".relative_attention_bias." in k and not k.startswith("encoder.layers.0."):
            continue
        out[k.replace("encoder.pos_conv.0.", "encoder.pos_conv.")] = v
    return cfg, out


def load_beats(path: str | Path, *, dtype: torch.dtype = torch.float32,
               device: torch.device | str = "cpu") -> Beats:
    """Build BEATs from its checkpoint on `device` in `dtype` (strict: every weight must fit)."""
    cfg, sd = read_beats_checkpoint(path)
    with torch.device("meta"):
        model = Beats(cfg)
    missing, unexpected = model.load_state_dict(sd, strict=False, assign=True)
    if missing or unexpected:
        raise UnknownModelError(f"The BEATs checkpoint {path} does not match its own cfg (missing "
                                f"{sorted(missing)[:3]}, unexpected {sorted(unexpected)[:3]}); "
                                "pass an unmodified BEATs checkpoint.")
    return model.to(device=device, dtype=dtype).eval()
