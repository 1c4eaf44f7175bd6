"""Figures are drawn headless (the Agg backend) and saved so that the same run gives the same bytes.

Matplotlib stamps PDFs with a creation date and PNGs with its version; these metadata settings leave
the stamps out where a module's outputs are checked byte for byte.
"""

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

PDF_METADATA = {"CreationDate": None, "Producer": None}
"""No creation date or producer in PDFs."""
PNG_METADATA = {"Software": None}
"""No software stamp in PNGs."""

__all__ = ["PDF_METADATA", "PNG_METADATA", "plt"]
