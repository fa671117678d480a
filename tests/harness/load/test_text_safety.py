"""Text that cannot break a report: refused at the loader with file and line, or written
into reports that parse back with the text intact."""

from __future__ import annotations

import shutil
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from harness.errors import MatrixError
from harness.evaluate.session import Session
from harness.evaluate.table import selection_table
from harness.load import load_matrix, yamlnodes, yamlsrc
from harness.load.text import describe_char, escape_unsafe, unsafe_char
from harness.load.yamlnodes import EditorLines
from harness.output.junit import write_junit
from harness.output.markdown import write_markdown
from tests.support.paths import MATRIX_DIR


@pytest.mark.parametrize(
    ("text", "bad"),
    [
        ("plain", None),
        ("tab\tline\nfeed\rreturn", None),
        ("line\u2028and\u2029paragraph separators", None),
        ("é ✗ Ｂ200 \U0001f600", None),
        ("a\x01b", "U+0001 (a control character)"),
        ("tri\x00ton", "U+0000 (a control character)"),
        ("\x1b[31m", "U+001B (a control character)"),
        ("\x7f", "U+007F (a control character)"),
        ("\x85", "U+0085 (a control character)"),
        ("\x9f", "U+009F (a control character)"),
        ("\ufdd0", "U+FDD0 (a Unicode non-character)"),
        ("\ufdef", "U+FDEF (a Unicode non-character)"),
        ("\ufffe", "U+FFFE (a Unicode non-character)"),
        ("\uffff", "U+FFFF (a Unicode non-character)"),
        ("\U0001fffe", "U+1FFFE (a Unicode non-character)"),
        ("\U0010ffff", "U+10FFFF (a Unicode non-character)"),
        ("\ud800", "U+D800 (a lone surrogate: not a character)"),
        ("\udcff", "U+DCFF (a lone surrogate: not a character)"),
    ],
)
def test_unsafe_characters(text, bad):
    char = unsafe_char(text)
    assert (None if char is None else describe_char(char)) == bad
    assert unsafe_char(escape_unsafe(text)) is None


def test_every_unsafe_character_breaks_xml_or_utf8_and_every_other_one_does_not():
    """The refused set is exactly what a report cannot hold, over the whole of Unicode
    (XML 1.0's Char production, less the discouraged C1 controls and non-characters)."""
    for code in range(0x110000):
        char = chr(code)
        xml_char = (
            code in (0x9, 0xA, 0xD)
            or 0x20 <= code <= 0xD7FF
            or 0xE000 <= code <= 0xFFFD
            or 0x10000 <= code <= 0x10FFFF
        )
        discouraged = 0x7F <= code <= 0x9F or 0xFDD0 <= code <= 0xFDEF or (code & 0xFFFE) == 0xFFFE
        assert (unsafe_char(char) is not None) == (not xml_char or discouraged), hex(code)


def test_editor_lines():
    text = "a\nb\r\nc\rd\u2028e\u2029f\x85g\n"
    lines = EditorLines(text)
    assert [lines.line(text.index(c)) for c in "abcdefg"] == [1, 2, 3, 4, 4, 4, 4]


def test_a_lone_surrogate_escape_is_refused_by_either_yaml_parser(tmp_path, monkeypatch):
    """libyaml refuses ``"\\ud800"`` itself; PyYAML's own parser builds the surrogate, and the
    loader refuses it."""
    path = tmp_path / "m.yaml"
    path.write_text('version: 1\nprofiles:\n  x: {name: "a\\ud800"}\n')
    for loader in {yamlnodes._Loader, yaml.SafeLoader}:
        monkeypatch.setattr(yamlnodes, "_Loader", loader)
        with pytest.raises(MatrixError) as info:
            load_matrix([path])
        problem = info.value.first
        assert (problem.line, problem.file) == (3, yamlsrc.display_path(path))
        assert "invalid" in problem.message or "U+D800 (a lone surrogate" in problem.message


# --- any text: refused where it is, or carried whole into reports that parse ----------------

_TEXT = st.text(
    alphabet=st.characters(codec=None, exclude_categories=()), min_size=1, max_size=40
)


def tiny_matrix(folder: Path, value: str) -> Path:
    """The shipped matrix with one sweep: b200 with VLLM_DISABLED_KERNELS=value."""
    shutil.copy(MATRIX_DIR / "gpus.yaml", folder / "gpus.yaml")
    data = yaml.safe_load((MATRIX_DIR / "selection.yaml").read_text(encoding="utf-8"))
    data["sweeps"] = [
        {"id": "text", "profiles": ["b200"], "envs": [{"VLLM_DISABLED_KERNELS": value}]}
    ]
    data["cases"] = []
    path = folder / "selection.yaml"
    # safe_dump writes what YAML cannot hold raw as an escape: the escaped path is exercised
    path.write_text(yaml.safe_dump(data, allow_unicode=True, width=10**6), encoding="utf-8")
    return path


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(value=_TEXT)
def test_any_text_is_refused_at_its_line_or_reaches_reports_that_parse(tmp_path_factory, value):
    folder = tmp_path_factory.mktemp("text")
    path = tiny_matrix(folder, value)
    bad = unsafe_char(value)
    # a line break to YAML that no editor shows, written raw: the file does not read as it shows
    raw_break = next((c for c in path.read_text(encoding="utf-8") if c in "\x85\u2028\u2029"), None)
    bad = bad or raw_break
    try:
        matrix = load_matrix([path])
    except MatrixError as exc:
        assert bad is not None, str(exc)
        lines = path.read_text(encoding="utf-8").splitlines()
        problem = exc.first
        assert problem.file == yamlsrc.display_path(path) and problem.line is not None
        assert "VLLM_DISABLED_KERNELS" in lines[problem.line - 1]
        if any("\ud800" <= c <= "\udfff" for c in value):  # YAML refuses a surrogate's escape first
            assert describe_char(bad) in problem.message or "invalid Unicode" in problem.message
        else:
            assert describe_char(bad) in problem.message
        return
    assert bad is None
    runner = Session(matrix)
    result = runner.run()
    junit = write_junit(result, folder / "reports" / "junit.xml")
    summary = write_markdown(result, selection_table(runner), folder / "reports" / "summary.md",
                             ["selection.yaml"])
    names = [case.get("name") for case in ET.parse(junit).getroot().iter("testcase")]
    assert any(value.replace("\r\n", "\n") in (n or "") or value in (n or "") for n in names), (
        value, names)
    summary.read_bytes().decode("utf-8")
