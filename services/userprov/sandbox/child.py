"""A template-rendering child process: JSON requests on stdin, one JSON answer per line on
stdout. It caps its own address space (RLIMIT_AS) and every render's output; the parent bounds
the time by killing it. Run as `python -m userprov.sandbox.child MEMORY_MB MAX_OUTPUT_CHARS`."""
from __future__ import annotations

import json
import resource
import sys
from collections import OrderedDict
from typing import Any

from jinja2 import Template, TemplateSyntaxError
from jinja2.exceptions import SecurityError

from userprov.sandbox.environment import sandboxed_environment

COMPILED_CACHE_SIZE = 256


class OutputTooLarge(Exception):
    pass


class Renderer:
    def __init__(self, max_output_chars: int) -> None:
        self._environment = sandboxed_environment()
        self._compiled: OrderedDict[str, Template] = OrderedDict()
        self._max_output = max_output_chars

    def render(self, source: str, context: dict[str, Any], budget: int) -> str:
        """At most `budget` characters (what is left of the request's output bound)."""
        pieces, size = [], 0
        for piece in self._template(source).generate(context):
            size += len(piece)
            if size > budget:
                raise OutputTooLarge(f"the templates render more than {self._max_output} characters together")
            pieces.append(piece)
        return "".join(pieces)

    @property
    def max_output(self) -> int:
        return self._max_output

    def _template(self, source: str) -> Template:
        template = self._compiled.get(source)
        if template is None:
            template = self._environment.from_string(source)
            self._compiled[source] = template
            if len(self._compiled) > COMPILED_CACHE_SIZE:
                self._compiled.popitem(last=False)
        else:
            self._compiled.move_to_end(source)
        return template


def answer(renderer: Renderer, request: dict[str, Any]) -> dict[str, Any]:
    """{"parts": {name: text}} or {"code": ..., "message": ..., "part": name}."""
    rendered, left = {}, renderer.max_output  # the bound holds for all parts together: the parent reads one bounded line
    for part, source in request["templates"].items():
        try:
            rendered[part] = renderer.render(source, request["context"], left)
            left -= len(rendered[part])
        except TemplateSyntaxError as error:
            return {"part": part, "code": "syntax", "message": f"line {error.lineno}: {error.message}"}
        except SecurityError as error:
            return {"part": part, "code": "unsafe", "message": str(error)}
        except OutputTooLarge as error:
            return {"part": part, "code": "too_large", "message": str(error)}
        except MemoryError:
            return {"part": part, "code": "memory", "message": "the template needs more memory than allowed", "exit": True}
        except RecursionError:
            return {"part": part, "code": "error", "message": "the template nests too deeply"}
        except Exception as error:  # noqa: BLE001 - any failure of tenant code is an answer, not a crash
            return {"part": part, "code": "error", "message": f"{type(error).__name__}: {error}"[:300]}
    return {"parts": rendered}


def main() -> None:
    memory_mb, max_output = int(sys.argv[1]), int(sys.argv[2])
    limit = memory_mb * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    renderer = Renderer(max_output)
    for line in sys.stdin:
        request = json.loads(line)
        reply = answer(renderer, request)
        sys.stdout.write(json.dumps({"id": request["id"], **reply}) + "\n")
        sys.stdout.flush()
        if reply.get("exit"):  # after a MemoryError the interpreter's state is not to be trusted
            return


if __name__ == "__main__":
    main()
