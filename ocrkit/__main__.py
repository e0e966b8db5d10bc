"""Run the command line as ``python -m ocrkit``."""

from ocrkit.cli import run

run()
