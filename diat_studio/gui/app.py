"""Entry point of the desktop window.

The window itself is the subject of its own issue; until it lands, `diat-studio` without a command says
what it will be and which commands already work, and exits with status 3.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

EXIT_NO_GUI = 3


def run_gui(args: Sequence[str]) -> int:
    print(
        "DIAT Studio's desktop window is not built yet. It will open a photo (or the bundled sample),\n"
        "show the faces and their landmarks, let you shape each edit's mask and apply attribute edits\n"
        "with a strength slider, undo/redo, before/after comparison and batch processing.\n\n"
        "Working now:\n"
        "  diat-studio batch IN_DIR OUT_DIR --edit NAME   edit every photo in a folder\n"
        "  diat-studio models                              list installed models\n"
        "  diat-studio info                                versions and execution providers",
        file=sys.stderr,
    )
    return EXIT_NO_GUI
