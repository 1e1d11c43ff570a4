"""``python -m wattledger`` and the ``wattledger`` script: the CLI of :mod:`wattledger.cli`."""

import sys


def main() -> None:
    """Console-script entry point. It lives here, not in :mod:`wattledger.cli`, so that a Ctrl-C
    while the CLI's modules load ends as one line too: a script made from ``wattledger.cli:main``
    imports that module before any handler of ours exists, and would print a traceback."""
    try:
        from wattledger.cli import main as run
    except KeyboardInterrupt:  # nothing has started yet
        sys.stderr.write("error: interrupted\n")
        sys.exit(130)
    run()


if __name__ == "__main__":
    main()
