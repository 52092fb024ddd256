#!/usr/bin/env python3
"""One timed manifest operation, in a process of its own so that the collection imported is the one
asked for (this tree's, or the baseline's checked out elsewhere) and the peak memory is this one
operation's.

  worker.py --collections DIR --op load|write|add --manifest FILE --repeat N

prints one JSON line: {"seconds": [...], "cpu_seconds": [...], "max_rss_mb": ..., "hosts": ...,
"services": ...} (cpu: this process's CPU time, which other load on the machine changes less).
``write`` rewrites the whole manifest (a new generated_from each time, so each write is a change:
backup, temporary file, fsync, rename); ``add`` adds one service to the first gateway.
"""

import argparse
import json
import resource
import sys
import time


def peak_rss_mb():
    """This process's peak resident memory: VmHWM, which starts again at exec (ru_maxrss may carry
    the peak of the parent that forked it)."""
    try:
        with open("/proc/self/status") as handle:
            for line in handle:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--collections", required=True)
    parser.add_argument("--op", choices=("load", "write", "add"), required=True)
    parser.add_argument("--manifest", required=True)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    sys.path.insert(0, args.collections)
    from ansible_collections.edgex.sysmgmt.plugins.module_utils._manifest.edits import counts, set_service
    from ansible_collections.edgex.sysmgmt.plugins.module_utils._manifest.store import ManifestStore

    store = ManifestStore(args.manifest)
    data = store.read() if args.op == "write" else None  # the data to write, read untimed
    seconds, cpu_seconds = [], []
    for number in range(args.repeat):
        started, cpu_started = time.perf_counter(), time.process_time()
        if args.op == "load":
            data = store.read()
        elif args.op == "write":
            store.write(dict(data, generated_from="bench round %d" % number))
        else:
            store.update(lambda d: set_service(d, sorted(d["hosts"])[0], "device-extra-%d" % number,
                                               {"port": 49000 + number, "executor": "docker",
                                                "target": "edgex-device-extra-%d" % number}))
        seconds.append(time.perf_counter() - started)
        cpu_seconds.append(time.process_time() - cpu_started)
    result = {"seconds": seconds, "cpu_seconds": cpu_seconds, "max_rss_mb": peak_rss_mb()}
    result.update(counts(store.read()))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
