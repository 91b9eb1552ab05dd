"""docs/protocol.md against the code of record (huxley_wire): every subject
builder has a row in the subjects table, every row has an example, every
example decodes with the model it names, and every row's "who may publish /
subscribe" cell is what the permission table that writes the server config
grants — so the page cannot drift from the wire without a test failing."""

from __future__ import annotations

import inspect
import json
import re
from pathlib import Path

import pytest
from pydantic import BaseModel

from huxley_wire.codec import Ok, Request, RequestTable, decode
from huxley_wire.messages import audio, bridge, common, focus, skills, storage
from huxley_wire.permissions_doc import who_may
from huxley_wire.subjects import Subjects

DOC = Path(__file__).resolve().parents[2] / "docs" / "protocol.md"
MODULES = (audio, bridge, common, focus, skills, storage)
WILD = "*"


def models() -> dict[str, type[BaseModel]]:
    found: dict[str, type[BaseModel]] = {"Ok": Ok}
    for module in MODULES:
        for name, obj in vars(module).items():
            if inspect.isclass(obj) and issubclass(obj, BaseModel) and obj.__module__ == module.__name__:
                found[name] = obj
    return found


def request_models() -> list[type[Request]]:
    # `Request[Ok]` and the like are pydantic's parametrized bases, not requests.
    return [m for m in models().values() if issubclass(m, Request) and "op" in vars(m)]


def doc_text() -> str:
    return DOC.read_text()


def subjects_section() -> str:
    return doc_text().split("\n## Subjects\n", 1)[1].split("\n### ", 1)[0]


def documented_rows() -> dict[str, str]:
    """Subject as documented (`huxley.<site>.focus.rpc.<holder>`) -> the row's text."""
    rows = {}
    for line in subjects_section().splitlines():
        match = re.match(r"^\| `(huxley\.[^`]+)` \|", line)
        if match:
            rows[match.group(1)] = line
    return rows


def table_rows() -> dict[str, str]:
    """Subject pattern (site `home`, variable tokens as `*`) -> the row's text."""
    return {
        re.sub(r"<[^>]+>", WILD, pattern.replace("<site>", "home")): line
        for pattern, line in documented_rows().items()
    }


def same_shape(subject: str, pattern: str) -> bool:
    a, b = subject.split("."), pattern.split(".")
    return len(a) == len(b) and all(x == y or WILD in (x, y) for x, y in zip(a, b, strict=True))


def row_of(subject: str) -> str | None:
    rows = [line for pattern, line in table_rows().items() if same_shape(subject, pattern)]
    return rows[0] if rows else None


def builder_subjects() -> dict[str, str]:
    """Every concrete subject builder of `Subjects`, its variable tokens as `*`."""
    subjects = Subjects("home")
    built = {}
    for name, member in inspect.getmembers(Subjects, inspect.isfunction):
        if name.startswith("_") or name == "is_audio":
            continue
        params = list(inspect.signature(member).parameters)[1:]
        value = getattr(subjects, name)(*["placeholder"] * len(params))
        if "*" in value or ">" in value:
            continue  # a subscription pattern, not a subject
        built[name] = value.replace("placeholder", WILD)
    return built


def examples() -> list[tuple[str | None, str, str]]:
    """(subject or None for a reply, model name, payload) per example line."""
    block = doc_text().split("### Examples, one or more per subject", 1)[1]
    block = block.split("```text\n", 1)[1].split("\n```", 1)[0]
    found = []
    for line in block.splitlines():
        reply = re.match(r"^\s+← (\w+)\s+(.+)$", line)
        if reply:
            found.append((None, reply.group(1), reply.group(2)))
            continue
        sent = re.match(r"^(huxley\.\S+)\s+(\w+)\s+(.+)$", line)
        assert sent, f"example line not understood: {line!r}"
        found.append((sent.group(1), sent.group(2), sent.group(3)))
    return found


def test_every_subject_builder_has_a_row_in_the_table():
    rows = table_rows()
    missing = [
        f"{name}: {subject}"
        for name, subject in builder_subjects().items()
        if not any(same_shape(subject, pattern) for pattern in rows)
    ]
    assert not missing, f"subjects not in docs/protocol.md's table: {missing}"


def test_every_row_names_a_real_subject():
    built = list(builder_subjects().values())
    for pattern in table_rows():
        assert any(same_shape(pattern, subject) for subject in built), pattern


def test_every_row_has_an_example():
    sent = [subject for subject, _, _ in examples() if subject is not None]
    for pattern, line in table_rows().items():
        assert any(same_shape(subject, pattern) for subject in sent), f"no example for {line}"


@pytest.mark.parametrize("index", range(len(examples())))
def test_each_example_decodes_with_its_model(index):
    known = models()
    lines = examples()
    subject, name, payload = lines[index]
    if name == "AudioFrame":
        assert subject is not None and Subjects("home").is_audio(subject), subject
        return
    assert name in known, f"{name} is not a model of huxley_wire.messages"
    model = known[name]
    data = payload.encode()
    if issubclass(model, Request):
        RequestTable([model]).decode(data)  # v, op and no unknown field
    else:
        decode(data, model)
        # Events and replies ignore unknown fields on the wire; the page must not invent any.
        extra = set(json.loads(payload)) - set(model.model_fields)
        assert not extra, f"{name} has no field(s) {extra}"
    if subject is None:
        previous = next(s for s, _, _ in reversed(lines[:index]) if s is not None)
        request = next(known[n] for s, n, _ in reversed(lines[:index]) if s is not None)
        assert issubclass(request, Request), f"reply {name} follows a publish on {previous}"
        assert issubclass(model, request.reply_model), f"{name} is not the reply of {request.__name__}"
        return
    row = row_of(subject)
    assert row is not None, f"{subject} is not in the subjects table"
    if issubclass(model, Request):
        listed = f"`{model.op}`" in row or f"`{name}`" in row
        assert listed, f"op {model.op!r} of {name} is not listed for {subject}"
    elif " R " not in row.replace("|", " "):
        assert f"`{name}`" in row, f"{name} is not listed for {subject}"


def test_every_request_op_has_an_example():
    shown = {name for _, name, _ in examples()}
    missing = [m.__name__ for m in request_models() if m.__name__ not in shown]
    assert not missing, f"requests without an example in docs/protocol.md: {missing}"


def test_the_subjects_table_has_the_who_may_column():
    header = next(line for line in subjects_section().splitlines() if line.startswith("| subject |"))
    assert header.rstrip().endswith("| who may publish / subscribe |"), header


def test_who_may_publish_and_subscribe_is_the_permission_table():
    wrong = []
    for pattern, line in documented_rows().items():
        cell = line.rstrip().removesuffix("|").rsplit(" | ", 1)[1].strip()
        expected = who_may(pattern)
        if cell != expected:
            wrong.append(f"{pattern}\n  doc:   {cell}\n  table: {expected}")
    differ = "docs/protocol.md's who-may cells differ from huxley_wire.permissions:\n"
    assert not wrong, differ + "\n".join(wrong)
