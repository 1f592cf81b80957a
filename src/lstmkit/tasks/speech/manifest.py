"""``lstmkit speech manifest``: train.csv / test.csv from a folder of audio files named by label."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from lstmkit.tasks.speech.config import ManifestOptions


def run(args: dict[str, Any], options: ManifestOptions) -> int:
    """Scan ``--data`` for files matching ``--pattern`` and write ``--out``/train.csv and test.csv
    (files whose ``{index}`` is in ``--test-index``); row counts go to stderr."""
    from lstmkit.data.manifest import build_manifest

    counts = build_manifest(args["data"], args["out"], pattern=options.pattern, test_index=options.test_index)
    for split, n in counts.items():
        print(f"{Path(args['out']) / f'{split}.csv'}: {n} rows", file=sys.stderr)
    return 0
