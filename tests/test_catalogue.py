"""The language catalogue: shipped study table, user CSV overrides, clear errors."""

import pytest

from actstore.catalogue import Catalogue
from actstore.errors import ActstoreError, UnknownLanguageError


def test_study_table_ships_36_languages_with_metadata():
    cat = Catalogue.load()
    assert len(cat) == 36
    eng = cat.get("eng")
    assert (eng.flores_code, eng.fleurs_config, eng.resource_level) == ("eng_Latn", "en_us", "high")
    assert len(cat.resolve(None, language_set="seamless_salmonn")) == 30
    assert len(cat.resolve(None, language_set="sonar")) == 30
    assert cat.get("khm").espeak_voice == ""


def test_unknown_language_names_the_fix():
    with pytest.raises(UnknownLanguageError, match="Unknown language 'xxx'.*--languages"):
        Catalogue.load().resolve("eng,xxx")


def test_user_csv_adds_and_overrides(tmp_path):
    csv = tmp_path / "mine.csv"
    csv.write_text("code,name,resource_level,espeak_voice\nzul,Zulu,low,\neng,,medium,\n")
    cat = Catalogue.load(csv)
    assert cat.get("zul").name == "Zulu"
    assert cat.get("eng").resource_level == "medium"
    assert cat.get("eng").name == "English"  # untouched columns keep the study's values


def test_bad_user_csv(tmp_path):
    csv = tmp_path / "bad.csv"
    csv.write_text("code,colour\nzul,red\n")
    with pytest.raises(ActstoreError, match="unknown column"):
        Catalogue.load(csv)
    csv.write_text("code,resource_level\nzul,huge\n")
    with pytest.raises(ActstoreError, match="use one of high, medium, low"):
        Catalogue.load(csv)
