"""Silence transformers' progress bars and info logs while a converter saves a model, so
`actstore convert-model` prints only the directory it wrote."""

from __future__ import annotations

from contextlib import contextmanager


@contextmanager
def quiet_saving():
    from transformers.utils import logging as hf_logging

    level, bars = hf_logging.get_verbosity(), hf_logging.is_progress_bar_enabled()
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        hf_logging.set_verbosity(level)
        if bars:
            hf_logging.enable_progress_bar()
