"""`python -m minidq` and the `minidq` command: the CLI, with a Ctrl-C during start-up (while
torch loads) answered like one during the work."""

import sys


def entry() -> int:
    try:
        from .cli import main
    except KeyboardInterrupt:
        print("minidq: interrupted", file=sys.stderr)
        return 130
    return main()


if __name__ == "__main__":
    sys.exit(entry())
