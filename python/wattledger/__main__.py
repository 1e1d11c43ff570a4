"""``python -m wattledger``: the same CLI as the ``wattledger`` script."""

from wattledger.cli import main

main()
