"""`python -m dci_bridge` runs the command line."""

from dci_bridge.cli import main

if __name__ == "__main__":
    main()
