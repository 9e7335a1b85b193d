"""FLORES-200 text: the shipped devtest files, a user's FLORES directory, selection and errors."""

import hashlib
import pytest

from actstore.catalogue import Catalogue
from actstore.errors import DataSourceError
from actstore.ingest.sources import FloresText, open_source
from actstore.ingest.sources.flores import shipped_flores_dir

ENG_1 = '"We now have 4-month-old mice that are non-diabetic that used to be diabetic," he added.'


@pytest.fixture(scope="module")
def catalogue():
    return Catalogue.load()


@pytest.fixture
def flores_dir(tmp_path):
    """A tiny FLORES-200 directory: dev (2 sentences) and devtest (3) for English and German."""
    for split, n in (("dev", 2), ("devtest", 3)):
        (tmp_path / split).mkdir()
        for code in ("eng_Latn", "deu_Latn"):
            lines = [f"{code} {split} sentence {i}." for i in range(1, n + 1)]
            (tmp_path / split / f"{code}.{split}").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return tmp_path


def test_shipped_devtest_has_the_study_languages_with_1012_sentences(catalogue):
    src = FloresText(catalogue)
    assert src.languages() == catalogue.codes and len(src.languages()) == 36
    for lang in ("eng", "cmn", "khm", "yue"):
        assert src.sentence_ids(lang, "text") == list(range(1, 1013))
    assert src.texts("eng")[1] == ENG_1
    assert src.texts("eng")[1012].startswith("Workers must often get their superiors' approval")


def test_shipped_files_match_their_checksums():
    root = shipped_flores_dir()
    for line in (root / "SHA256SUMS.txt").read_text().splitlines():
        digest, name = line.split()
        assert hashlib.sha256((root / name).read_bytes()).hexdigest() == digest, name
    assert (root / "README.md").is_file() and (root / "LICENSE-CC-BY-SA-4.0.txt").is_file()


def test_items_select_sentence_ids_and_skip_stored_samples(catalogue):
    src = FloresText(catalogue)
    items = list(src.items("eng", "text", sentence_ids=[3, 1, 2, 5000]))
    assert [i.sentence_id for i in items] == [1, 2, 3]  # unknown ids are ignored
    first = items[0]
    assert (first.lang, first.modality, first.split, first.text) == ("eng", "text", "devtest", ENG_1)
    assert first.sample_id == "flores200:devtest:eng:1"
    assert src.sample_ids("eng", "text", [1, 2]) == ["flores200:devtest:eng:1", "flores200:devtest:eng:2"]
    resumed = list(src.items("eng", "text", sentence_ids=[1, 2, 3],
                             skip_sample_ids={"flores200:devtest:eng:2"}))
    assert [i.sentence_id for i in resumed] == [1, 3]
    assert list(src.items("eng", "text", sentence_ids=[1], skip_sample_ids={"flores200:devtest:eng:1"})) == []


def test_user_directory_dev_split_and_revision(catalogue, flores_dir):
    dev = open_source("flores", catalogue=catalogue, data_dir=flores_dir, split="dev", speech=False)
    assert dev.name == "flores200+espeak-ng"
    assert dev.languages() == ["deu", "eng"]
    assert dev.modalities("eng") == ["text"]
    assert dev.texts("deu") == {1: "deu_Latn dev sentence 1.", 2: "deu_Latn dev sentence 2."}
    assert [i.sample_id for i in dev.items("eng", "text")] == ["flores200:dev:eng:1", "flores200:dev:eng:2"]
    rev = FloresText(catalogue, flores_dir, "devtest").revision()
    assert rev == FloresText(catalogue, flores_dir, "devtest").revision()
    assert rev.startswith("flores200:devtest:sha256:")
    (flores_dir / "devtest" / "eng_Latn.devtest").write_text("changed 1.\nchanged 2.\nchanged 3.\n")
    assert FloresText(catalogue, flores_dir, "devtest").revision() != rev


def test_bad_split_and_missing_directory_are_clear_errors(catalogue, tmp_path):
    with pytest.raises(DataSourceError, match="no split 'test'; use 'dev' or 'devtest'"):
        FloresText(catalogue, split="test")
    with pytest.raises(DataSourceError, match="shipped data has only devtest"):
        FloresText(catalogue, split="dev")
    with pytest.raises(DataSourceError, match="contains dev/ and devtest/"):
        FloresText(catalogue, tmp_path / "nowhere")


def test_empty_line_names_file_and_line(catalogue, flores_dir):
    path = flores_dir / "devtest" / "eng_Latn.devtest"
    path.write_text("one.\n\nthree.\n", encoding="utf-8")
    src = FloresText(catalogue, flores_dir)
    with pytest.raises(DataSourceError, match=r"eng_Latn\.devtest line 2 is empty"):
        src.items("eng", "text")


def test_unknown_language_and_modality_are_clear_errors(catalogue, flores_dir):
    src = FloresText(catalogue, flores_dir)
    with pytest.raises(DataSourceError, match="has no language 'fra'; choose from deu, eng"):
        src.sentence_ids("fra", "text")
    with pytest.raises(DataSourceError, match="has no speech for 'eng'"):
        list(src.items("eng", "speech"))
    with pytest.raises(DataSourceError, match="Unknown modality 'video'"):
        src.sample_ids("eng", "video", [1])


def test_open_source_rejects_unknown_kinds_and_options(catalogue):
    with pytest.raises(DataSourceError, match="Unknown source 'flors'; use one of flores, fleurs, manifest"):
        open_source("flors", catalogue=catalogue)
    with pytest.raises(DataSourceError, match="Unknown option"):
        open_source("flores", catalogue=catalogue, speeech=False)


def test_user_catalogue_language_with_flores_file(tmp_path, flores_dir):
    (flores_dir / "devtest" / "xho_Latn.devtest").write_text("Molo.\n", encoding="utf-8")
    csv = tmp_path / "langs.csv"
    csv.write_text("code,name,flores_code\nxho,Xhosa,xho_Latn\n", encoding="utf-8")
    src = FloresText(Catalogue.load(csv), flores_dir)
    assert "xho" in src.languages()
    assert src.texts("xho") == {1: "Molo."}

