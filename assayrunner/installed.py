"""What is installed, found without importing importlib.metadata (which costs `assayrun --help` half of typer)."""

import os
import sys


def others_may_plug_in() -> bool:
    """Whether a distribution besides assayrunner may declare an 'assayrunner' entry point: a look at the
    dist-info folders on sys.path (True when unsure: a zip or an egg on the path). ASSAYRUN_LOAD_PLUGINS=''
    (load none) means none."""
    only = os.environ.get("ASSAYRUN_LOAD_PLUGINS")
    if only is not None and not only.strip(" ,"):
        return False
    for entry in sys.path:
        folder = entry or "."
        if os.path.isfile(folder) or folder.endswith(".egg"):  # a zip or an egg: let importlib.metadata look
            return True
        try:
            names = os.listdir(folder)
        except OSError:
            continue
        for name in names:
            if name.endswith((".dist-info", ".egg-info")) and name.split("-")[0].lower() != "assayrunner":
                try:
                    with open(os.path.join(folder, name, "entry_points.txt"), encoding="utf-8") as f:
                        if "[assayrunner]" in f.read():
                            return True
                except OSError:
                    continue
    return False
