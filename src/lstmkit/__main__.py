"""``python -m lstmkit`` and ``torchrun ... -m lstmkit``: the same as the ``lstmkit`` command."""

import sys

from lstmkit.cli.main import main

if __name__ == "__main__":
    sys.exit(main())
