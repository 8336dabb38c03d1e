"""Make ``example_signatures`` importable for its tests without installing the package.

Installed (``pip install examples/custom-signature-package``), the package is
found anyway; from a checkout, pytest puts ``src/`` on the path here.
"""

import sys
from pathlib import Path

SRC = Path(__file__).resolve().parent / "src"
if str(SRC) not in sys.path:
    sys.path.insert(0, str(SRC))
