"""``python -m wattledger``: the same CLI as the ``wattledger`` script."""

import sys

try:
    from wattledger.cli import main
except KeyboardInterrupt:  # Ctrl-C while the CLI's modules load: nothing has started yet
    sys.stderr.write("error: interrupted\n")
    sys.exit(130)

main()
