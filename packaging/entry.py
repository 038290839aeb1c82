"""PyInstaller entry point: the same `diat-studio` command (GUI, batch, models, info)."""

import multiprocessing
import sys

from diat_studio.cli import main

if __name__ == "__main__":
    multiprocessing.freeze_support()
    sys.exit(main())
