"""Entry point: python -m cnn_core ..."""
import sys

from cnn_core.cli.entry import main

sys.exit(main())
