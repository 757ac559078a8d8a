"""Prints the project's requirements from pyproject.toml, one per line, for `pip install -r`.

    python3 requirements.py pyproject.toml [build] [EXTRA ...]

The core dependencies always; `build` adds the build backend (the image installs the project without build
isolation, so without an index); each EXTRA adds that optional group. The images install these before the
source is copied, so editing the code does not reinstall torch.
"""

import sys
import tomllib

path, *groups = sys.argv[1:]
with open(path, "rb") as f:
    project = tomllib.load(f)
requirements = list(project["project"]["dependencies"])
for group in groups:
    if group == "build":
        requirements += project["build-system"]["requires"]
    else:
        requirements += project["project"]["optional-dependencies"][group]
print("\n".join(requirements))
