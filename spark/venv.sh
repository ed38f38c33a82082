#!/usr/bin/env bash
# Make (or reuse) the Python environment the Spark job and its parity test run in, and print its
# python. The venv lives outside the clone: ${DA_SPARK_VENV:-$HOME/.cache/da-spark-venv}.
#   export DA_SPARK_PYTHON="$(bash spark/venv.sh)"
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
venv="${DA_SPARK_VENV:-$HOME/.cache/da-spark-venv}"
command -v java >/dev/null || { echo "spark/venv.sh: Java 17 is needed (java not found)" >&2; exit 2; }
[ -x "$venv/bin/python" ] || python3 -m venv "$venv" >&2
if ! "$venv/bin/python" - "$here/requirements.txt" <<'PY' >/dev/null 2>&1
import sys
from importlib.metadata import version
for line in open(sys.argv[1]):
    line = line.split("#")[0].strip()
    if line:
        name, want = line.split("==")
        assert version(name) == want, (name, version(name), want)
PY
then
  "$venv/bin/pip" install --disable-pip-version-check -q -r "$here/requirements.txt" >&2
fi
echo "$venv/bin/python"
