"""Where a text file stops being its encoding: the line, not only a byte offset.

Python's text decoding reports an offset inside a buffered chunk, which a municipality cannot find in its
file. This scan reads the file line by line as bytes and names the first line that does not decode.
"""

from __future__ import annotations

from pathlib import Path


def undecodable_line(path: Path, encoding: str = "utf-8-sig") -> tuple[int, int, int] | None:
    """(line number, the offending byte, its offset in the file) of the first byte that does not decode,
    or None. Lines split at b'\\n', which never occurs inside a UTF-8 multi-byte sequence."""
    offset = 0
    with path.open("rb") as fh:
        for number, raw in enumerate(fh, start=1):
            try:
                raw.decode(encoding if number == 1 else encoding.removesuffix("-sig"))
            except UnicodeDecodeError as exc:
                return number, raw[exc.start], offset + exc.start
            offset += len(raw)
    return None


def encoding_reason(path: Path, encoding: str = "utf-8-sig", label: str = "UTF-8") -> tuple[str, int | None]:
    """The reason for a file that is not `label` text, naming its line; and that line (None if unknown)."""
    found = undecodable_line(path, encoding)
    if found is None:
        return f"not {label} text", None
    line, byte, offset = found
    return f"not {label} text: line {line} has byte 0x{byte:02X} (file offset {offset}) that is not {label}", line
