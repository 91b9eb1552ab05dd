from pathlib import Path

import pytest

from huxley_runtime.persona import CONSTRAINT_SNIPPETS, Constraint, PersonaError, load_persona, parse_persona

PERSONAS = Path(__file__).resolve().parents[2] / "personas"

MINIMAL = """
version: 1
name: tiny
system_prompt: Be brief.
"""


def test_the_default_persona_loads():
    persona = load_persona("basic", PERSONAS)
    assert persona.name == "basic"
    assert persona.language_code == "en"
    assert list(persona.skills)[:2] == ["system", "timers"]  # order = registration order
    assert "es" in persona.i18n
    assert persona.system_prompt_for("es").startswith("Eres Huxley")
    assert persona.transcription_language_for("es") == "es"
    assert persona.ui_string("thinking", "es") == "Un momento..."
    assert persona.ui_string("thinking") == "One moment..."


def test_instructions_append_constraint_snippets():
    persona = parse_persona(MINIMAL + "constraints: [child_safe, echo_short_input]\n")
    text = persona.instructions()
    assert text.startswith("Be brief.")
    assert CONSTRAINT_SNIPPETS[Constraint.CHILD_SAFE] in text
    assert CONSTRAINT_SNIPPETS[Constraint.ECHO_SHORT_INPUT] in text


def test_unknown_top_level_key_is_named_in_the_error():
    with pytest.raises(PersonaError) as info:
        parse_persona(MINIMAL + "voise: alloy\n", "x.yaml")
    message = str(info.value)
    assert "x.yaml" in message and "'voise'" in message and "voice" in message


def test_unknown_key_inside_an_i18n_block_is_refused():
    with pytest.raises(PersonaError) as info:
        parse_persona(MINIMAL + "i18n:\n  es:\n    sistem_prompt: hola\n")
    assert "i18n.es.sistem_prompt" in str(info.value)


def test_unknown_constraint_and_bad_version_are_refused():
    with pytest.raises(PersonaError, match="constraints"):
        parse_persona(MINIMAL + "constraints: [be_nice]\n")
    with pytest.raises(PersonaError, match="version"):
        parse_persona(MINIMAL.replace("version: 1", "version: 2"))


def test_name_must_be_usable_in_subjects():
    with pytest.raises(PersonaError, match="name"):
        parse_persona(MINIMAL.replace("name: tiny", "name: my home"))


def test_skill_config_merges_its_language_block():
    persona = parse_persona(
        MINIMAL
        + "skills:\n  timers:\n    fire_prompt: A {message}\n"
        + "    i18n:\n      es:\n        fire_prompt: B {message}\n  system:\n"
    )
    assert persona.skill_config("timers") == {"fire_prompt": "A {message}"}
    assert persona.skill_config("timers", "es") == {"fire_prompt": "B {message}"}
    assert persona.skill_config("system") == {}


def test_not_yaml_and_missing_file_are_clear():
    with pytest.raises(PersonaError, match="not valid YAML"):
        parse_persona("a: [1, 2")
    with pytest.raises(PersonaError, match="not found"):
        load_persona("nobody", PERSONAS)
