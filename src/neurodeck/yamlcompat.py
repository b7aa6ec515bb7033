"""PyYAML's pure-Python parser, adjusted to read every file as libyaml does.

yamlsrc reads a file with libyaml when PyYAML was built with it, and with the pure-Python
parser otherwise (and to word the problems in a file libyaml refuses). The overrides below
make both give the same events, so a deck reads the same on every machine.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol, cast

import yaml


class EventParser(Protocol):
    """What the composer needs of a parser: libyaml's CParser and PyParser both have it."""

    def check_event(self, *choices: type) -> bool: ...
    def get_event(self) -> Any: ...
    def dispose(self) -> None: ...


class PyParser(yaml.reader.Reader, yaml.scanner.Scanner, yaml.parser.Parser):
    """PyYAML's pure-Python reader, scanner and parser: a stream of events, no composer.

    A few methods follow libyaml where PyYAML differs, so that a file reads the same with
    or without libyaml: a tab may separate words and trail a value (PyYAML refuses any tab
    outside quotes), `|#` and `[a?b]` are allowed, a byte-order mark may start any line and
    counts as a column, and the end of the stream is on a line of its own.
    """

    def __init__(self, stream: str) -> None:
        yaml.reader.Reader.__init__(self, stream)
        yaml.scanner.Scanner.__init__(self)
        yaml.parser.Parser.__init__(self)

    def forward(self, length: int = 1) -> None:
        if self.pointer + length + 1 >= len(self.buffer):
            self.update(length + 1)
        while length:
            ch = self.buffer[self.pointer]
            self.pointer += 1
            self.index += 1
            if ch in "\n\x85\u2028\u2029" or (ch == "\r" and self.buffer[self.pointer] != "\n"):
                self.line += 1
                self.column = 0
            else:
                self.column += 1
            length -= 1

    def fetch_stream_end(self) -> None:
        # libyaml ends the stream on a line of its own, which marks of empty values use.
        if self.column != 0:
            self.column = 0
            self.line += 1
        super().fetch_stream_end()

    def scan_to_next_token(self) -> None:
        if self.index == 0 and self.peek() == "\ufeff":
            self.forward()
            self.column = 0  # the mark that starts the stream takes no column
        while True:
            if self.column == 0 and self.peek() == "\ufeff":
                self.forward()
            # libyaml skips a tab wherever it cannot be taken for indentation.
            while self.peek() == " " or (
                self.peek() == "\t" and (self.flow_level or not self.allow_simple_key)
            ):
                self.forward()
            if self.peek() == "#":
                while self.peek() not in "\0\r\n\x85\u2028\u2029":
                    self.forward()
            if not self._line_break():
                return
            if not self.flow_level:
                self.allow_simple_key = True

    def scan_plain(self) -> Any:
        # As PyYAML's, except that `?` does not end a plain scalar inside [ ] or { }.
        chunks: list[str] = []
        start_mark = end_mark = self.get_mark()
        indent = self.indent + 1
        spaces: list[str] | None = []
        ends_in_flow = ",[]{}" if self.flow_level else ""
        while True:
            length = 0
            if self.peek() == "#":
                break
            while True:
                ch = self.peek(length)
                if (
                    ch in "\0 \t\r\n\x85\u2028\u2029"
                    or (ch == ":" and self.peek(length + 1) in _BLANKZ + ends_in_flow)
                    or ch in ends_in_flow
                ):
                    break
                length += 1
            if length == 0:
                break
            self.allow_simple_key = False
            chunks.extend(spaces or ())
            chunks.append(self.prefix(length))
            self.forward(length)
            end_mark = self.get_mark()
            spaces = self.scan_plain_spaces(indent, start_mark)
            if not spaces or self.peek() == "#" or (not self.flow_level and self.column < indent):
                break
        return yaml.tokens.ScalarToken("".join(chunks), True, start_mark, end_mark)

    def scan_plain_spaces(self, indent: int, start_mark: Any) -> list[str] | None:
        chunks: list[str] = []
        length = 0
        while self.peek(length) in " \t":
            length += 1
        whitespaces = self.prefix(length)
        self.forward(length)
        if self.peek() not in "\r\n\x85\u2028\u2029":
            if whitespaces:
                chunks.append(whitespaces)
            return chunks
        line_break = self._line_break()
        self.allow_simple_key = True
        if self._at_document_marker():
            return None
        breaks = []
        while self.peek() in " \t\r\n\x85\u2028\u2029":
            if self.peek() == " ":
                self.forward()
            elif self.peek() == "\t":
                if self.column < indent:
                    raise yaml.scanner.ScannerError(
                        "while scanning a plain scalar",
                        start_mark,
                        "found a tab character that violates indentation",
                        self.get_mark(),
                    )
                self.forward()
            else:
                breaks.append(self._line_break())
                if self._at_document_marker():
                    return None
        if line_break != "\n":
            chunks.append(line_break)
        elif not breaks:
            chunks.append(" ")
        chunks.extend(breaks)
        return chunks

    def scan_block_scalar_indicators(self, start_mark: Any) -> tuple[bool | None, int | None]:
        # As PyYAML's, except that a tab or a comment may follow `|` or `>` directly.
        chomping: bool | None = None
        increment: int | None = None
        for _ in range(2):
            ch = self.peek()
            if ch in "+-" and chomping is None:
                chomping = ch == "+"
            elif ch in "0123456789" and increment is None:
                if ch == "0":
                    raise yaml.scanner.ScannerError(
                        "while scanning a block scalar",
                        start_mark,
                        "expected indentation indicator in the range 1-9, but found 0",
                        self.get_mark(),
                    )
                increment = int(ch)
            else:
                break
            self.forward()
        ch = self.peek()
        if ch not in "\0 \t#\r\n\x85\u2028\u2029":
            raise yaml.scanner.ScannerError(
                "while scanning a block scalar",
                start_mark,
                f"expected chomping or indentation indicators, but found {ch!r}",
                self.get_mark(),
            )
        return chomping, increment

    def scan_block_scalar_ignored_line(self, start_mark: Any) -> None:
        while self.peek() in " \t":
            self.forward()
        if self.peek() == "#":
            while self.peek() not in "\0\r\n\x85\u2028\u2029":
                self.forward()
        ch = self.peek()
        if ch not in "\0\r\n\x85\u2028\u2029":
            raise yaml.scanner.ScannerError(
                "while scanning a block scalar",
                start_mark,
                f"expected a comment or a line break, but found {ch!r}",
                self.get_mark(),
            )
        self._line_break()

    def _line_break(self) -> str:
        return cast(str, self.scan_line_break())  # type: ignore[no-untyped-call]

    def _at_document_marker(self) -> bool:
        return self.prefix(3) in ("---", "...") and self.peek(3) in "\0 \t\r\n\x85\u2028\u2029"


_BLANKZ = "\0 \t\r\n\x85\u2028\u2029"

_PARSERS: dict[bool, Callable[[str], EventParser]] = {False: PyParser}
try:
    from yaml.cyaml import CParser  # type: ignore[attr-defined]

    _PARSERS[True] = CParser
    HAVE_LIBYAML = True
except ImportError:  # pragma: no cover - depends on how PyYAML was built
    HAVE_LIBYAML = False


def parser_class(use_libyaml: bool) -> Callable[[str], EventParser]:
    """libyaml's parser or the pure-Python one: each turns text into the same events."""
    return _PARSERS[use_libyaml]
