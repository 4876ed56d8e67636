"""genbatch: spreadsheet rows in, rendered and published GEN videos out.

The public API is listed in ``__all__``; everything else is internal.
"""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__"]
