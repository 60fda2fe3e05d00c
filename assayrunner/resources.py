"""Where the shipped data folders (protocols/, templates/) are: in the wheel or in the source tree."""

from functools import lru_cache
from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent


@lru_cache(maxsize=None)
def data_dir(name: str) -> Path:
    """The folder `name`: inside the installed package (wheel), else at the top of the source tree (editable);
    looked up once per process (an installation's layout does not change under it)."""
    for candidate in (_PACKAGE / name, _PACKAGE.parent / name):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError(f"assayrunner data folder {name!r} is missing from the installation")
