"""Text from a manifest never drives a terminal (issue 12, item 14).

A display name with terminal escape codes used to be printed raw by `diat-studio models`. Every text a
user is shown is refused at load time when it holds a control character (C0 with ESC, DEL, C1), a
bidirectional control, a lone surrogate or a line separator; what the registry reports (reasons, names of
folders whose manifest could not be read) is escaped.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from diat_studio.cli import EXIT_OK, main
from diat_studio.core.manifest import MANIFEST_FILE, ManifestError, ModelManifest
from diat_studio.core.model_files import unsafe_character
from diat_studio.core.registry import ModelRegistry
from tests import onnx_fixtures
from tests.core.manifest_edits import fixture_manifest, with_value

FIELDS = [
    "name",
    "display_name",
    "attribute",
    "description",
    "licence",
    "template.name",
    "transform.file",
    "transform.output",
    "transform.inputs.image",
    "enhancer.output",
]

CHARACTERS = {
    "esc": "\x1b",  # ESC: CSI sequences, window titles, OSC 52 clipboard writes
    "bel": "\x07",
    "c1-csi": "\x9b",  # the one-byte CSI of C1
    "del": "\x7f",
    "nul": "\x00",
    "rlo": "\u202e",  # right-to-left override ("Trojan Source")
    "lri": "\u2066",
    "carriage-return": "\r",
    "line-separator": "\u2028",
    "lone-surrogate": "\ud800",  # JSON "\ud800": cannot even be encoded to print
}


@pytest.mark.parametrize("character", CHARACTERS.values(), ids=CHARACTERS.keys())
@pytest.mark.parametrize("field", FIELDS)
def test_a_control_character_in_any_shown_text_is_refused(
    models_root: Path, field: str, character: str
) -> None:
    value = f"\x1b[2J{character}pwned" if field == "display_name" else f"a{character}b"
    with pytest.raises(ManifestError) as caught:
        ModelManifest.from_dict(with_value(fixture_manifest(models_root), field, value))
    message = str(caught.value)
    assert f"'{field}' contains the control character U+" in message
    assert unsafe_character(message) is None  # the message itself is safe to print


@pytest.mark.parametrize("field", ["name", "display_name", "attribute", "template.name", "transform.output"])
def test_a_newline_or_tab_in_a_one_line_text_is_refused(models_root: Path, field: str) -> None:
    for character in "\n\t":
        with pytest.raises(ManifestError, match=r"contains the control character U\+000[9A]"):
            ModelManifest.from_dict(with_value(fixture_manifest(models_root), field, f"a{character}b"))


def test_description_and_licence_may_have_lines_and_tabs(models_root: Path) -> None:
    data = with_value(fixture_manifest(models_root), "description", "First line.\n\tSecond line.")
    manifest = ModelManifest.from_dict(with_value(data, "licence", "CC BY 4.0\nhttps://example.org"))
    assert manifest.description == "First line.\n\tSecond line." and manifest.licence.endswith("example.org")


def test_ordinary_unicode_is_kept(models_root: Path) -> None:
    name = "Lèvres rouges · 口红 👩\u200d🔬 ثالث"  # accents, CJK, an emoji with a joiner, Arabic
    manifest = ModelManifest.from_dict(with_value(fixture_manifest(models_root), "display_name", name))
    assert manifest.display_name == manifest.label == name


def test_overlong_names_are_refused(models_root: Path) -> None:
    with pytest.raises(ManifestError, match="'display_name' is longer than 200 characters"):
        ModelManifest.from_dict(with_value(fixture_manifest(models_root), "display_name", "x" * 201))


def test_the_models_command_prints_no_escape_codes(tmp_path: Path, isolated_user_dirs: Path, capsys) -> None:
    hostile = onnx_fixtures.model_folder(tmp_path, "hostile")
    data = json.loads((hostile / MANIFEST_FILE).read_text())
    data["display_name"] = "\x1b]0;owned\x07\x1b[2J\u202eNice edit"
    (hostile / MANIFEST_FILE).write_text(json.dumps(data))
    onnx_fixtures.model_folder(tmp_path, "redden-mouth")
    assert main(["models", "--models-dir", str(tmp_path)]) == EXIT_OK
    out = capsys.readouterr().out
    assert unsafe_character(out, "\n") is None, ascii(out)
    assert "'display_name' contains the control character U+001B" in out
    assert "Redden mouth" in out  # the good model is listed as usual


def test_registry_names_reasons_and_locations_are_escaped(tmp_path: Path, models_root: Path) -> None:
    """A folder whose name holds escape codes: its manifest cannot be read, so it is listed by folder name."""
    folder = tmp_path / "evil\x1b[31m\u202e"
    folder.mkdir()
    (folder / MANIFEST_FILE).write_text("{not json")
    (entry,) = ModelRegistry([tmp_path]).entries
    assert entry.name == "evil\\x1b[31m\\u202e"
    for text in (entry.name, entry.label, entry.reason or "", entry.location):
        assert unsafe_character(text) is None, ascii(text)
    assert "unreadable manifest" in (entry.reason or "")
    assert entry.directory == folder  # the real path is kept for opening files
