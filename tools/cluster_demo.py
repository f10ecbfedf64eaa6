"""`make cluster-demo`: the demo through a provincial centre's set-up, on this one machine.

A scratch PostgreSQL (the catalogue) and Redis (the queue) from Debian's packages, two
`digitize worker` processes, then the demo's commands with `process --queue --wait`.
Everything stops at the end; the servers' folders are removed, the demo home stays.
"""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

from digitize.config import load_config, resolve_paths
from tools import REPO_ROOT, demo, servers

WORKERS = 2


def main() -> int:
    scratch = Path(tempfile.mkdtemp(prefix="digitize-cluster-demo-"))
    scratch.chmod(0o711)  # the PostgreSQL server's user must reach its folder inside
    home = resolve_paths(load_config())["home"]
    workers: list[subprocess.Popen] = []
    try:
        with servers.postgres(scratch / "postgres") as admin, servers.redis(scratch / "redis") as broker:
            os.environ["DIGITIZE_DATABASE_URL"] = servers.create_database(admin, "digitize_demo")
            os.environ["DIGITIZE_BROKER_URL"] = broker
            print(f"PostgreSQL: {os.environ['DIGITIZE_DATABASE_URL']}\nRedis: {broker}", flush=True)
            for number in range(1, WORKERS + 1):
                log = scratch / f"worker-{number}.log"
                workers.append(subprocess.Popen(
                    [sys.executable, "-m", "digitize.cli", "worker", "--concurrency", "1", "--name",
                     f"demo-{number}@%h"], cwd=REPO_ROOT, stdout=log.open("w"), stderr=subprocess.STDOUT,
                    start_new_session=True))
                print(f"digitize worker {number}: pid {workers[-1].pid}, log {log}", flush=True)
            code = demo.main(queued=True)
            for worker in workers:
                os.killpg(worker.pid, signal.SIGTERM)
            for worker in workers:
                worker.wait(120)
            print(f"\nDemo home: {home}")
            return code
    finally:
        for worker in workers:
            if worker.poll() is None:
                os.killpg(worker.pid, signal.SIGKILL)
                worker.wait()
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
