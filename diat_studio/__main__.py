import sys

from diat_studio.cli import main

sys.exit(main())
