"""Loads a release folder with Hugging Face `datasets`, as an ML engineer would, and prints
what came out as JSON: per split its row count, the label feature's kind and ClassLabel names,
and the first row's label decoded to its name. Called by the release API test when
MIRRORSET_DATASETS_PYTHON names the pinned venv's python (scripts/hf_datasets.sh)."""
import json
import sys

import datasets

ds = datasets.load_dataset(sys.argv[1])
out = {}
for split, d in ds.items():
    label = d.features["label"]
    first = d[0]["label"] if len(d) else None
    out[split] = {
        "rows": len(d),
        "label_feature": type(label).__name__,
        "label_names": list(getattr(label, "names", [])),
        "first_label": label.int2str(first) if first is not None else None,
    }
print(json.dumps(out, sort_keys=True))
