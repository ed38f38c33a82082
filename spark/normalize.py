"""Run `diversion-audit normalize` on the executors, one task per input file:

    spark-submit --files /usr/local/bin/diversion-audit spark/normalize.py \\
        --out /shared/canonical [--joins FILE] [--ip-country FILE] [--config FILE] -- FILE...

Each task runs the binary shipped with `--files` (or `--binary PATH` where it is installed on every
host) on its file, writing straight into `--out`, which every executor must see (a shared mount: NFS,
CephFS, a FUSE mount of the object store). Part sets are named by their input, so the tasks never
write the same file; a task that fails is retried by Spark and rewrites its own parts. The join log
and the IP table are read by every task (they are small); `--config` is the same file the audit job
reads. Prints one line per file and exits non-zero if any file failed.
"""

import argparse
import os
import subprocess
import sys

from pyspark import SparkFiles
from pyspark.sql import SparkSession


def parse(argv):
    p = argparse.ArgumentParser(prog="diversion-audit-normalize", description=__doc__.splitlines()[0])
    p.add_argument("--out", required=True, help="the canonical directory every executor writes into")
    p.add_argument("--binary", help="the binary's path on every host (default: the one shipped with --files)")
    p.add_argument("--joins", action="append", default=[], help="join logs (every task normalises them too)")
    p.add_argument("--ip-country", help="IP → country table")
    p.add_argument("--config", help="the audit's TOML config")
    p.add_argument("--master", help="Spark master when not set by spark-submit (e.g. local[2])")
    p.add_argument("inputs", nargs="+", help="CDR files (one task each)")
    return p.parse_args(argv)


def run(argv=None):
    args = parse(argv if argv is not None else sys.argv[1:])
    b = SparkSession.builder.appName("diversion-audit normalize")
    if args.master:
        b = b.master(args.master)
    spark = b.getOrCreate()
    spark.sparkContext.setLogLevel("ERROR")
    binary, out = args.binary, os.path.abspath(args.out)
    side = []
    for j in args.joins:
        side += ["--joins", os.path.abspath(j)]
    if args.ip_country:
        side += ["--ip-country", os.path.abspath(args.ip_country)]
    if args.config:
        side += ["--config", os.path.abspath(args.config)]
    files = [os.path.abspath(f) for f in args.inputs]

    def one(path):
        import hashlib
        import shutil

        exe = binary or SparkFiles.get("diversion-audit")
        # a directory of its own under `out` (the `_` hides it from readers): `normalize` holds one
        # run per directory, and the tasks run at once; its files are then renamed into place, the
        # manifest last, each rename atomic on the shared file system
        stage = os.path.join(out, "_tasks", hashlib.sha1(path.encode()).hexdigest()[:16])
        shutil.rmtree(stage, ignore_errors=True)
        p = subprocess.run([exe, "normalize", path, *side, "--out", stage], capture_output=True, text=True)
        if p.returncode == 0:
            files = []
            for root, _, names in os.walk(stage):
                for n in names:
                    rel = os.path.relpath(os.path.join(root, n), stage)
                    if not n.startswith("."):
                        files.append(rel)
            for rel in sorted(files, key=lambda r: (r.startswith("_manifests"), r)):
                os.makedirs(os.path.dirname(os.path.join(out, rel)), exist_ok=True)
                os.replace(os.path.join(stage, rel), os.path.join(out, rel))
        shutil.rmtree(stage, ignore_errors=True)
        return path, p.returncode, (p.stdout + p.stderr).strip()

    results = spark.sparkContext.parallelize(files, len(files)).map(one).collect()
    failed = 0
    for path, code, text in results:
        print(f"{path}: {text}" if code == 0 else f"{path}: failed (exit {code}): {text}")
        failed += code != 0
    try:
        os.rmdir(os.path.join(out, "_tasks"))
    except OSError:
        pass
    spark.stop()
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    run()
