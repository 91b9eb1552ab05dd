"""docs/security.md's identity table is the permission table of record."""

from __future__ import annotations

from pathlib import Path

from huxley_wire.permissions_doc import markdown_table

DOC = Path(__file__).resolve().parents[2] / "docs" / "security.md"


def test_the_identity_table_matches_the_permission_module():
    text = DOC.read_text()
    table = text.split("<!-- permission-table:start -->\n", 1)[1].split("<!-- permission-table:end -->", 1)[0]
    assert table == markdown_table(), (
        "docs/security.md is out of date: regenerate it with "
        "python -c 'from huxley_wire.permissions_doc import markdown_table; "
        'print(markdown_table(), end="")\''
    )
