"""The one renderer of the project's jinja2 templates (``templates/``), values only from the config.

Every file the lab renders goes through :func:`render_template`: the local registry's config,
the kind config, the overlays and the node files (which :mod:`lab.provision.files` then writes
with pyinfra's ``files.put``, so pyinfra's own template environment is never used).
"""

from __future__ import annotations

import functools
from typing import Any

from lab.config import PROJECT_ROOT

TEMPLATES_DIR = PROJECT_ROOT / "templates"


@functools.cache
def _environment() -> Any:
    import jinja2  # on first render: `lab --help` runs without the third-party packages

    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(TEMPLATES_DIR)),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def render_template(name: str, **values: Any) -> str:
    """Render ``templates/<name>``; a missing value is an error, never an empty string.

    A block tag's own line leaves no trace (``trim_blocks`` and ``lstrip_blocks``), so
    templates need no ``{%-`` to keep YAML lines together.
    """
    return _environment().get_template(name).render(**values)
