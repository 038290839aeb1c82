"""`diat-studio-train`: the torch trainer (data preparation, DIAT / DIAT-A training, export, evaluation).

The trainer is the subject of its own issue; until it lands this entry point says so and exits 3.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

EXIT_NOT_BUILT = 3


def main(argv: Sequence[str] | None = None) -> int:
    print(
        "diat-studio-train is not built yet: it will prepare aligned datasets, train DIAT / DIAT-A\n"
        "transform and enhancement networks, export ONNX models with a manifest.json for the app,\n"
        "and evaluate them. Install its dependencies with: pip install -e '.[train]'",
        file=sys.stderr,
    )
    return EXIT_NOT_BUILT


if __name__ == "__main__":
    sys.exit(main())
