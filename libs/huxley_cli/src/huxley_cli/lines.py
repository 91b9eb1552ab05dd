"""Splitting a child's output into lines, whatever their length.

asyncio's `readline()` gives up on a line over its 64 KiB buffer (and a
reader that dies leaves the child's pipe to fill and the child blocked in its
logger). This splitter takes the output in chunks and never holds more than
`max_line` bytes of a line: the rest of a long line is dropped and counted.
Pure: bytes in, text lines out.
"""

from __future__ import annotations

MAX_LINE_BYTES = 16 * 1024


class LineSplitter:
    def __init__(self, max_line: int = MAX_LINE_BYTES) -> None:
        self.max_line = max_line
        self._buffer = bytearray()
        self._dropped = 0  # bytes of the current line not kept

    def feed(self, chunk: bytes) -> list[str]:
        """The lines this chunk completes."""
        lines = []
        start = 0
        while (end := chunk.find(b"\n", start)) != -1:
            self._take(chunk[start:end])
            lines.append(self._finish())
            start = end + 1
        self._take(chunk[start:])
        return lines

    def end(self) -> list[str]:
        """What is left when the stream ends (a last line without a newline)."""
        return [self._finish()] if self._buffer or self._dropped else []

    def _take(self, part: bytes) -> None:
        room = self.max_line - len(self._buffer)
        self._buffer += part[:room]
        self._dropped += max(0, len(part) - room)

    def _finish(self) -> str:
        text = self._buffer.decode(errors="replace").rstrip()
        if self._dropped:
            text += f" ... [line cut: {self._dropped} more bytes]"
        self._buffer.clear()
        self._dropped = 0
        return text
