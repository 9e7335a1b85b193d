"""A tiny random-initialised BERT with a trained WordPiece tokenizer (see `common/tiny.py`)."""

from __future__ import annotations

from pathlib import Path

import torch

from actstore.ingest.adapters.common.tiny import TINY_HIDDEN, flores_texts, perturb_layernorms, quiet

BERT_LAYERS = 2


def build_tiny_bert(out_dir: str | Path, seed: int = 0,
                    corpus_texts: list[str] | None = None) -> Path:
    """Write a tiny random BERT (2 layers, width 32) with a WordPiece tokenizer to `out_dir`.

    The WordPiece vocabulary is trained on `corpus_texts` (default: a few shipped FLORES
    languages) so that test text does not tokenize to all-UNK.
    """
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, trainers
    from transformers import BertConfig, BertModel, PreTrainedTokenizerFast

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    texts = corpus_texts if corpus_texts is not None else flores_texts()[:3036]
    tok = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    tok.normalizer = normalizers.BertNormalizer(lowercase=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    tok.train_from_iterator(texts, trainers.WordPieceTrainer(vocab_size=1000, special_tokens=specials,
                                                             show_progress=False))
    from tokenizers import processors

    cls_id, sep_id = tok.token_to_id("[CLS]"), tok.token_to_id("[SEP]")
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B [SEP]",
        special_tokens=[("[CLS]", cls_id), ("[SEP]", sep_id)])
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="[UNK]", pad_token="[PAD]",
                                   cls_token="[CLS]", sep_token="[SEP]", mask_token="[MASK]",
                                   model_max_length=128)
    torch.manual_seed(seed)
    config = BertConfig(vocab_size=tok.get_vocab_size(), hidden_size=TINY_HIDDEN,
                        num_hidden_layers=BERT_LAYERS, num_attention_heads=4, intermediate_size=64,
                        max_position_embeddings=128, pad_token_id=tok.token_to_id("[PAD]"))
    config.actstore_random_init = True
    with quiet():
        model = BertModel(config).eval()
        perturb_layernorms(model, seed)
        model.save_pretrained(out)
    fast.save_pretrained(out)
    return out
