"""Run a command and print "wall_s peak_rss_mb" to the file named first: the peak of the summed
resident memory of the command and every process it starts (Spark's JVM is a child of the Python
driver, which GNU time's %M does not count), sampled every 0.2 s.

usage: python3 bench/treepeak.py OUT -- COMMAND...
"""
import os
import subprocess
import sys
import time


def tree(pid):
    out = [pid]
    try:
        for t in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{t}/children") as f:
                for c in f.read().split():
                    out += tree(int(c))
    except OSError:
        pass
    return out


def rss_kb(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def main():
    out, cmd = sys.argv[1], sys.argv[sys.argv.index("--") + 1 :]
    t0 = time.time()
    p = subprocess.Popen(cmd)
    peak = 0
    while p.poll() is None:
        peak = max(peak, sum(rss_kb(x) for x in tree(p.pid)))
        time.sleep(0.2)
    wall = time.time() - t0
    with open(out, "a") as f:
        f.write(f"{wall:.2f} {peak / 1024:.0f}\n")
    sys.exit(p.returncode)


if __name__ == "__main__":
    main()
