"""What reached the speaker: the audio-io file backend's WAV, cut into its
20 ms blocks, each block named by the known audio it is an exact copy of.

Everything that plays at full gain reaches the file bit for bit (the mixer's
float round trip is exact at gain 1), so a block is found verbatim in the
PCM it came from: a phrase of the simulator's tone voice, the book (a chirp,
so every window of it is unique and tells where in the book it is), or the
intercom's tone. Blocks that are silent, mixed, ramped or cut by an underrun
are `silence` or `other`; the assertions only rely on named blocks.
"""

from __future__ import annotations

import wave
from dataclasses import dataclass
from pathlib import Path

from huxley_realtime_sim.voice import ToneVoice

BLOCK_BYTES = 960  # 20 ms of PCM16 24 kHz mono
BYTES_PER_S = 48_000
SILENT_BLOCK = bytes(BLOCK_BYTES)
BOOK = "book"

_voice = ToneVoice()


def speech(text: str) -> bytes:
    """The simulator's tone voice for `text` (deterministic: what it sends)."""
    return _voice.render_now(text)


def read_speaker(path: Path) -> bytes:
    with wave.open(str(path), "rb") as wav:
        assert (wav.getnchannels(), wav.getsampwidth(), wav.getframerate()) == (1, 2, 24_000)
        return wav.readframes(wav.getnframes())


@dataclass(frozen=True)
class Block:
    index: int
    label: str  # "silence", "other", a phrase, "intercom" or BOOK
    book_s: float = -1.0  # for BOOK: where in the book the block starts (s)


def _find_even(haystack: bytes, needle: bytes) -> int:
    at = haystack.find(needle)
    while at >= 0 and at % 2:
        at = haystack.find(needle, at + 1)
    return at


class Timeline:
    def __init__(self, pcm: bytes, references: dict[str, bytes], book: bytes | None = None) -> None:
        # One haystack for all references; a found offset maps back to its label.
        parts: list[tuple[int, int, str]] = []
        haystack = bytearray()
        for label, ref in references.items():
            parts.append((len(haystack), len(haystack) + len(ref), label))
            haystack += ref + b"\x01\x00"  # a separator no block crosses unnoticed
        self.blocks: list[Block] = []
        for i in range(len(pcm) // BLOCK_BYTES):
            block = pcm[i * BLOCK_BYTES : (i + 1) * BLOCK_BYTES]
            self.blocks.append(self._name(i, block, bytes(haystack), parts, book))

    @staticmethod
    def _name(
        index: int, block: bytes, haystack: bytes, parts: list[tuple[int, int, str]], book: bytes | None
    ) -> Block:
        if block == SILENT_BLOCK:
            return Block(index, "silence")
        if book is not None:
            at = _find_even(book, block)
            if at >= 0:
                return Block(index, BOOK, at / BYTES_PER_S)
        at = _find_even(haystack, block)
        if at >= 0:
            for start, end, label in parts:
                if start <= at and at + BLOCK_BYTES <= end:
                    return Block(index, label)
        return Block(index, "other")

    # -- queries --------------------------------------------------------------------
    def of(self, label: str) -> list[Block]:
        return [b for b in self.blocks if b.label == label]

    def first(self, label: str) -> int:
        found = self.of(label)
        assert found, f"{label!r} never reached the speaker\n{self.describe()}"
        return found[0].index

    def last(self, label: str) -> int:
        found = self.of(label)
        assert found, f"{label!r} never reached the speaker\n{self.describe()}"
        return found[-1].index

    def heard_ms(self, label: str) -> int:
        """How long `label` was heard: its runs end to end, so the silences
        between a phrase's words count."""
        return sum((last - first + 1) * 20 for name, first, last in self.runs() if name == label)

    def book_between(self, start: int, end: int) -> list[Block]:
        return [b for b in self.blocks[start:end] if b.label == BOOK]

    def runs(self) -> list[tuple[str, int, int]]:
        """(label, first block, last block) of each run, silence and noise left out."""
        runs: list[tuple[str, int, int]] = []
        for block in self.blocks:
            if block.label in ("silence", "other"):
                continue
            if runs and runs[-1][0] == block.label and block.index - runs[-1][2] <= 10:
                runs[-1] = (block.label, runs[-1][1], block.index)
            else:
                runs.append((block.label, block.index, block.index))
        return runs

    def order(self) -> list[str]:
        """The labels in the order they were heard (consecutive repeats merged)."""
        labels: list[str] = []
        for label, _, _ in self.runs():
            if not labels or labels[-1] != label:
                labels.append(label)
        return labels

    def describe(self) -> str:
        lines = []
        for label, first, last in self.runs():
            where = ""
            if label == BOOK:
                where = f" book {self.blocks[first].book_s:.2f}-{self.blocks[last].book_s:.2f} s"
            lines.append(f"  {first * 0.02:6.2f}-{(last + 1) * 0.02:6.2f} s  {label}{where}")
        return "speaker timeline:\n" + "\n".join(lines)
