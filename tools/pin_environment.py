"""Set the pip pins of environment.yml to the versions of the lock (`make lock` runs it).

    python tools/pin_environment.py constraints.txt environment.yml

Every line ``      - <name><specifier>`` of environment.yml's ``pip:`` section whose package
the lock pins becomes ``      - <name>==<version of the lock>``; option lines (``-c``, ``-e``)
and comments are kept. A package of environment.yml that the lock does not pin is an error
(one line naming it), as the two files must list the same versions
(``tests/test_packaging.py`` checks them).
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

_PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;#]+)")
_ENV_LINE = re.compile(r"^(\s+- )([A-Za-z0-9][A-Za-z0-9._-]*)(\[[^\]]*\])?\s*([<>=!~][^#]*)?(#.*)?$")


def norm(name: str) -> str:
    """A package name as PEP 503 compares it (lower case, runs of ``-_.`` as ``-``)."""
    return re.sub(r"[-_.]+", "-", name).lower()


def lock_pins(text: str) -> dict[str, str]:
    """``{normalised name: version}`` of every ``name==version`` line of a lock."""
    return {norm(m.group(1)): m.group(2) for line in text.splitlines() if (m := _PIN.match(line))}


def pin_environment(env_text: str, pins: dict[str, str]) -> str:
    """environment.yml's text with the pip section's package lines pinned to ``pins``.

    Raises:
        KeyError: a package of the pip section that ``pins`` lacks (the message names it).
    """
    out, in_pip = [], False
    for line in env_text.splitlines(keepends=True):
        stripped = line.strip()
        if stripped == "- pip:":
            in_pip = True
        elif in_pip and stripped and not stripped.startswith("#"):
            m = _ENV_LINE.match(line.rstrip("\n"))
            if m and not m.group(2).startswith("-"):
                name = norm(m.group(2))
                if name not in pins:
                    raise KeyError(f"environment.yml: package {m.group(2)!r} is not pinned in the lock")
                line = f"{m.group(1)}{m.group(2)}{m.group(3) or ''}=={pins[name]}\n"
        out.append(line)
    return "".join(out)


def main(argv: list[str]) -> int:
    """``pin_environment.py LOCK ENVIRONMENT_YML``: rewrite the second file in place; 2 on bad arguments."""
    if len(argv) != 2:
        print(__doc__.strip().splitlines()[2].strip(), file=sys.stderr)
        return 2
    lock, env = Path(argv[0]), Path(argv[1])
    env.write_text(pin_environment(env.read_text(), lock_pins(lock.read_text())))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
