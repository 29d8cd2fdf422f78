"""The bundled static admin console, served at `/ui/` (every asset ships in this package)."""

from pathlib import Path

STATIC_DIR = Path(__file__).parent / "static"
