"""Help text that fits the terminal: prose paragraphs are wrapped to its width; example lines
(indented `command   what it does`) keep their layout when they fit, and otherwise put the
explanation on the next line, indented, so nothing runs past the edge."""

import argparse
import re
import textwrap

EXAMPLE = re.compile(r"^(\s+)(\S.*?)(?:\s{2,}(\S.*))?$")


class WrappedHelp(argparse.RawDescriptionHelpFormatter):
    def _fill_text(self, text: str, width: int, indent: str) -> str:
        out: list[str] = []
        for paragraph in re.split(r"\n\s*\n", text.strip("\n")):
            lines = paragraph.splitlines()
            head = lines[:1] if lines[0].rstrip().endswith(":") and len(lines) > 1 else []
            if all(line.startswith(" ") for line in lines[len(head):]):  # examples, under a heading or not
                out.append("\n".join([indent + h for h in head]
                                     + [self._example(line, width, indent) for line in lines[len(head):]]))
            else:
                out.append(self._prose(lines, width, indent))
        return "\n\n".join(out)

    @staticmethod
    def _prose(lines: list[str], width: int, indent: str) -> str:
        """A paragraph; a first line ending in ':' (a heading) stays on its own."""
        head = [lines[0]] if len(lines) > 1 and lines[0].rstrip().endswith(":") else []
        body = " ".join(line.strip() for line in lines[len(head):])
        filled = textwrap.fill(body, width, initial_indent=indent, subsequent_indent=indent)
        return "\n".join([indent + h for h in head] + [filled])

    @staticmethod
    def _example(line: str, width: int, indent: str) -> str:
        if len(indent + line) <= width:
            return indent + line
        match = EXAMPLE.match(line)
        if match is None:
            return textwrap.fill(line, width, initial_indent=indent, subsequent_indent=indent + "    ")
        lead, command, note = match.group(1), match.group(2), match.group(3)
        parts = textwrap.wrap(command, width - len(indent + lead), subsequent_indent="  ") or [command]
        shown = [indent + lead + p for p in parts]
        if note:
            shown += textwrap.wrap(note, width, initial_indent=indent + lead + "    ",
                                   subsequent_indent=indent + lead + "    ")
        return "\n".join(shown)
