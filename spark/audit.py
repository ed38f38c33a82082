"""spark-submit entry point: `spark-submit spark/audit.py --canonical DIR --joins DIR --out DIR
[--config audit.toml] [--history DIR]` (docs/scale-out.md). The package beside this file is put
on the path here; on a cluster ship it with `--py-files spark/diversion_audit_spark.zip`."""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from diversion_audit_spark.job import run  # noqa: E402

if __name__ == "__main__":
    run()
