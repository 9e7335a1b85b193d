"""What a newcomer sees for a mistyped `--model` or `--adapter`: the closest names, and a missing
path reported as a path (never as a hub id to download)."""

from __future__ import annotations

import pytest

from actstore.errors import UnknownModelError
from actstore.ingest.adapters import load_adapter
from actstore.ingest.adapters.registry import adapter_named
from actstore.ingest.model_paths import resolve_model


@pytest.fixture(autouse=True)
def empty_caches(tmp_path, monkeypatch):
    """No HF or fairseq2 cache content: only built-in names can be offered."""
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf"))
    monkeypatch.setenv("FAIRSEQ2_CACHE_DIR", str(tmp_path / "fs2"))
    monkeypatch.setenv("FAIRSEQ2_USER_ASSET_DIR", str(tmp_path / "fs2cards"))
    return tmp_path


def test_a_missing_directory_is_reported_as_a_path(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(UnknownModelError) as err:
        resolve_model("./missing-dir", cache_dir=tmp_path / "hf")
    message = str(err.value)
    assert "No model file or directory" in message and "missing-dir" in message
    assert "huggingface-cli" not in message


def test_a_mistyped_path_offers_the_closest_entry(tmp_path):
    (tmp_path / "tiny_seamless").mkdir()
    with pytest.raises(UnknownModelError, match="closest there: 'tiny_seamless'"):
        resolve_model(str(tmp_path / "tiny_seamles"), cache_dir=tmp_path / "hf")


def test_a_mistyped_hub_id_offers_the_study_model(tmp_path):
    with pytest.raises(UnknownModelError) as err:
        resolve_model("facebook/seamless-m4t-v2-larg", cache_dir=tmp_path / "hf")
    assert "Did you mean 'facebook/seamless-m4t-v2-large'" in str(err.value)
    assert "huggingface-cli download facebook/seamless-m4t-v2-larg" in str(err.value)


def test_a_mistyped_cached_hub_id_is_found_in_the_cache(tmp_path):
    snapshot = tmp_path / "hf" / "models--acme--speech-encoder" / "snapshots" / "abc"
    snapshot.mkdir(parents=True)
    (snapshot / "config.json").write_text("{}")
    with pytest.raises(UnknownModelError, match="Did you mean 'acme/speech-encoder'"):
        resolve_model("acme/speech-encodr", cache_dir=tmp_path / "hf")


def test_a_mistyped_family_name_offers_what_the_family_locates():
    with pytest.raises(UnknownModelError, match="Did you mean 'sonar_speech_encoder_eng'"):
        load_adapter("sonar_speech_encoder_en")


def test_a_mistyped_adapter_offers_the_registered_one():
    with pytest.raises(UnknownModelError, match="Did you mean 'whisper'"):
        adapter_named("whispr")
