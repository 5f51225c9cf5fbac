"""``hub init``: the commented starter workspace (hub.toml, config/, an example usage file).

This module knows the bundled templates; it must not know the configuration's checks, the store or click.
"""

from __future__ import annotations

import shutil
from importlib import resources
from pathlib import Path

from hub.app.core import HubError

#: the starter's files, relative to the workspace
FILES = ("hub.toml", "config/catalog.toml", "config/accounts.toml", "usage/example.csv")


def write_starter(directory: Path, *, force: bool = False) -> list[Path]:
    """Write the starter files into ``directory``; the paths written.

    :raises HubError: some exist already and ``force`` is not set (nothing is written).
    """
    existing = [str(directory / rel) for rel in FILES if (directory / rel).exists()]
    if existing and not force:
        raise HubError(f"{', '.join(existing)} exist{'s' if len(existing) == 1 else ''}; nothing written "
                       f"(--force overwrites)")
    template = resources.files("hub") / "templates" / "init"
    written = []
    for rel in FILES:
        target = directory / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        with resources.as_file(template.joinpath(*rel.split("/"))) as src:
            shutil.copyfile(src, target)
        written.append(target)
    return written
