"""Entry point: python -m cnn_core ..."""
import sys

from .cli import main

sys.exit(main())
