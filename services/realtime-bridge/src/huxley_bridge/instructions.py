"""What the model is told: the session.update the bridge sends.

Instructions = the persona's prompt and constraint snippets + each skill's
prompt_context + the last conversation's summary. Server turn detection is
off (push-to-talk), audio is PCM16 24 kHz both ways, and user audio is
transcribed with the persona's language hint.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from huxley_runtime.persona import Persona

PCM = {"type": "audio/pcm", "rate": 24000}
SUMMARY_HEADING = "What happened in the previous conversation (a summary):"


def compose_instructions(persona_instructions: str, prompt_contexts: list[str], summary: str | None) -> str:
    parts = [persona_instructions.strip(), *[p.strip() for p in prompt_contexts]]
    if summary and summary.strip():
        parts.append(f"{SUMMARY_HEADING}\n{summary.strip()}")
    return "\n\n".join(p for p in parts if p)


@dataclass(frozen=True)
class Voice:
    """The persona's voice settings for one language."""

    instructions: str
    voice: str
    transcription_language: str

    @classmethod
    def of(cls, persona: Persona, language: str | None = None) -> Voice:
        return cls(
            persona.instructions(language), persona.voice, persona.transcription_language_for(language)
        )


def session_update(
    voice: Voice,
    *,
    model: str,
    transcription_model: str,
    prompt_contexts: list[str],
    tools: list[dict[str, Any]],
    summary: str | None,
    full: bool = True,
    transcription: bool = False,
) -> dict[str, Any]:
    """The session.update event. `full=False` is a refresh (tools and
    instructions, plus the transcription settings with `transcription`): the
    voice can't change once the model has spoken."""
    session: dict[str, Any] = {
        "type": "realtime",
        "instructions": compose_instructions(voice.instructions, prompt_contexts, summary),
        "tools": tools,
        "tool_choice": "auto",
    }
    hint = {"model": transcription_model, "language": voice.transcription_language}
    if transcription and not full:
        session["audio"] = {"input": {"transcription": hint}}
    if full:
        session |= {
            "model": model,
            "output_modalities": ["audio"],
            "audio": {
                "input": {
                    "format": PCM,
                    "transcription": hint,
                    "turn_detection": None,
                },
                "output": {"format": PCM, "voice": voice.voice},
            },
        }
    return {"type": "session.update", "session": session}
