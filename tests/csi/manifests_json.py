"""Print the YAML documents of the given files as one JSON array of
{file, doc}, for validate_manifests.js (no YAML parser in Node here)."""
import json
import os
import sys

import yaml

out = []
for path in sys.argv[1:]:
    with open(path) as f:
        for doc in yaml.safe_load_all(f):
            if doc is not None:
                out.append({"file": os.path.basename(path), "doc": doc})
json.dump(out, sys.stdout)
