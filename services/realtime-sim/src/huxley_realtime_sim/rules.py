"""The simulator's script: a YAML rule file that maps what the user "said" to
what the model does.

    voice: tones            # tones | espeak (espeak-ng if installed, else tones)
    speed: 1.0              # audio pacing: 1.0 real time, 0 as fast as possible
    chunk_ms: 100           # audio per response.output_audio.delta
    default: {say: "I heard you."}       # when no rule matches
    follow_up: {say: "Done."}            # a response after tool outputs, rule exhausted
    rules:
      - name: time
        text: ["what time", "the time"]  # substrings, case-insensitive
        regex: null                      # or a regex; named groups become {vars}
        marker: "1"                      # DTMF keys found in committed audio
        transcript: "What time is it?"   # what the "user said" for that audio
        say: "Let me look."              # shorthand for steps[0].say
        tools: [{name: get_current_time, arguments: {}}]
        then: "It is {output.time}."     # shorthand for steps[1].say
        # or: steps: [{say, tone, silence_ms, tools, delay_ms, drop_after_ms,
        #              malformed_arguments, hold, hold_after_ms, error_after_ms}, ...]

A rule's first step answers the user's input; each later step answers the
next `response.create` after tool outputs arrived. A rule whose tools the
session has not declared is skipped unless `allow_undeclared_tools` is set
(that is how a test makes the model call an unknown tool).

Templates: `{name}` or `{name.field}` from the regex groups, the rule's
`vars`, `input` (the user's text) and `output` (the last tool output, parsed
as JSON when it is JSON). Missing names render as "".
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from huxley_realtime_sim.markers import valid_marker


class RulesError(ValueError):
    """A rule file that can't be used, with a message that says why."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ToolCallSpec(_Strict):
    name: str = Field(min_length=1)
    arguments: dict[str, Any] | str = Field(default_factory=dict)  # a string is sent as is


class ToneSpec(_Strict):
    hz: float = Field(default=440.0, gt=0, lt=12_000)
    ms: int = Field(default=500, gt=0, le=600_000)


class Step(_Strict):
    """One model response."""

    say: str | None = None  # spoken (espeak-ng or tones) with this transcript
    tone: ToneSpec | None = None  # a plain tone instead of speech
    silence_ms: int = Field(default=0, ge=0, le=600_000)  # silence after the speech
    tools: list[ToolCallSpec] = Field(default_factory=list)
    # Faults and timing, for tests.
    delay_ms: int = Field(default=0, ge=0, le=600_000)  # before the first output
    drop_after_ms: int | None = Field(default=None, ge=0)  # abort the socket after this much audio
    malformed_arguments: bool = False  # send tool arguments that are not JSON
    hold: bool = False  # never finish on its own: only response.cancel ends it
    hold_after_ms: int | None = Field(default=None, ge=0)  # stop the audio here until response.cancel
    error_after_ms: int | None = Field(default=None, ge=0)  # a server_error here; no response.done follows
    speed: float | None = Field(default=None, ge=0)  # overrides the rule book's pacing

    @property
    def has_audio(self) -> bool:
        return bool(self.say) or self.tone is not None or self.silence_ms > 0


class Rule(_Strict):
    name: str
    text: list[str] = Field(default_factory=list)
    regex: str | None = None
    marker: str | None = None
    transcript: str | None = None
    vars: dict[str, str] = Field(default_factory=dict)
    steps: list[Step]
    allow_undeclared_tools: bool = False

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, data: Any) -> Any:
        if not isinstance(data, dict) or "steps" in data:
            return data
        data = dict(data)
        first = {k: data.pop(k) for k in list(data) if k in Step.model_fields}
        steps = [first]
        then = data.pop("then", None)
        if isinstance(then, str):
            steps.append({"say": then})
        elif isinstance(then, dict):
            steps.append(then)
        data["steps"] = steps
        return data

    @field_validator("text", mode="before")
    @classmethod
    def _one_or_many(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value

    @field_validator("regex")
    @classmethod
    def _compiles(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                re.compile(value)
            except re.error as exc:
                raise ValueError(f"regex does not compile: {exc}") from None
        return value

    @field_validator("marker")
    @classmethod
    def _dtmf(cls, value: str | None) -> str | None:
        if value is not None and not valid_marker(value):
            raise ValueError("marker must be DTMF keys: 0-9, A-D, *, #")
        return value

    @model_validator(mode="after")
    def _matches_something(self) -> Rule:
        if not (self.text or self.regex or self.marker):
            raise ValueError(f"rule {self.name!r} needs text, regex or marker")
        if not self.steps:
            raise ValueError(f"rule {self.name!r} has no steps")
        return self

    def tool_names(self) -> set[str]:
        return {call.name for step in self.steps for call in step.tools}


class RuleBook(_Strict):
    voice: Literal["tones", "espeak"] = "tones"
    espeak_voice: str = "en"
    speed: float = Field(default=1.0, ge=0)
    chunk_ms: int = Field(default=100, ge=20, le=2000)
    default: Step = Step(say="I heard you.")
    follow_up: Step = Step(say="Done.")
    rules: list[Rule] = Field(default_factory=list)

    def phrases(self) -> set[str]:
        """Every fixed (untemplated) text the book can say, to render at startup."""
        steps = [self.default, self.follow_up, *[s for r in self.rules for s in r.steps]]
        return {s.say for s in steps if s.say and "{" not in s.say}


@dataclass
class Match:
    rule: Rule | None  # None: the default step
    values: dict[str, Any] = field(default_factory=dict)


def _usable(rule: Rule, declared_tools: set[str]) -> bool:
    return rule.allow_undeclared_tools or rule.tool_names() <= declared_tools


def match_text(book: RuleBook, text: str, declared_tools: set[str]) -> Match:
    lowered = text.casefold()
    for rule in book.rules:
        if not _usable(rule, declared_tools):
            continue
        if rule.regex:
            found = re.search(rule.regex, text, flags=re.IGNORECASE)
            if found:
                groups = {k: v for k, v in found.groupdict().items() if v is not None}
                return Match(rule, {**rule.vars, **groups, "input": text})
        if any(needle.casefold() in lowered for needle in rule.text):
            return Match(rule, {**rule.vars, "input": text})
    return Match(None, {"input": text})


def match_marker(book: RuleBook, keys: str, declared_tools: set[str]) -> Match:
    for rule in book.rules:
        if rule.marker and rule.marker in keys and _usable(rule, declared_tools):
            heard = rule.transcript or ""
            return Match(rule, {**rule.vars, "input": heard})
    return Match(None, {"input": ""})


_FIELD = re.compile(r"\{([A-Za-z_][A-Za-z0-9_.]*)\}")


def render(template: str, values: dict[str, Any]) -> str:
    def lookup(found: re.Match[str]) -> str:
        value: Any = values
        for part in found.group(1).split("."):
            value = value.get(part) if isinstance(value, dict) else None
            if value is None:
                return ""
        return value if isinstance(value, str) else json.dumps(value)

    return _FIELD.sub(lookup, template)


def render_arguments(arguments: dict[str, Any] | str, values: dict[str, Any]) -> str:
    """Tool arguments as the JSON string the model sends. Templates in string
    values are rendered; a value that is just `{name}` and renders to an
    integer becomes a JSON number."""
    if isinstance(arguments, str):
        return render(arguments, values)

    def walk(value: Any) -> Any:
        if isinstance(value, str):
            text = render(value, values)
            if _FIELD.fullmatch(value) and re.fullmatch(r"-?\d+", text):
                return int(text)
            return text
        if isinstance(value, dict):
            return {k: walk(v) for k, v in value.items()}
        if isinstance(value, list):
            return [walk(v) for v in value]
        return value

    return json.dumps(walk(arguments), ensure_ascii=False)


def parse_output(output: str) -> Any:
    try:
        return json.loads(output)
    except (json.JSONDecodeError, TypeError):
        return output


def parse_rules(text: str, source: str = "<string>") -> RuleBook:
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise RulesError(f"rules {source}: not valid YAML: {exc}") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise RulesError(f"rules {source}: the top level must be a mapping")
    try:
        return RuleBook.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or 'file'}: {err['msg']}" for err in exc.errors()[:5]
        )
        raise RulesError(f"rules {source}: {problems}") from None


def load_rules(path: str | Path | None = None) -> RuleBook:
    """The rule file at `path`, or the one shipped with the simulator."""
    if path is None or str(path) == "":
        text = resources.files("huxley_realtime_sim").joinpath("default_rules.yaml").read_text("utf-8")
        return parse_rules(text, "default_rules.yaml")
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise RulesError(f"rules {path}: can't read it: {exc}") from None
    return parse_rules(text, str(path))
