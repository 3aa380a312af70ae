"""``python -m lab``."""

import sys

try:
    from lab.cli import main
except ModuleNotFoundError as missing:
    # A fresh clone's python3 has none of the lab's packages: say what works, not a traceback.
    if (missing.name or "lab").partition(".")[0] == "lab":
        raise
    print(
        f"ERROR: the lab's Python packages are not installed for {sys.executable} (no module "
        f"{missing.name!r}): from a fresh clone run the lab through nox (`nox -s lab -- --help`), "
        "or install it first: python3 -m pip install -e .",
        file=sys.stderr,
    )
    raise SystemExit(2) from None

raise SystemExit(main())
