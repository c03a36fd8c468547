"""`python -m conformance` is `dci-conformance`."""

from conformance.cli import main

if __name__ == "__main__":
    main()
