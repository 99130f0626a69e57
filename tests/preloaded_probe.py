"""A command for tests/test_preloaded.py: reports how it was started, then ends as its first argument says."""

import atexit
import json
import os
import signal
import sys

atexit.register(lambda: print("atexit ran", flush=True))
os.write(2, b"written to fd 2\n")
print(json.dumps({"argv": sys.argv, "cwd": os.getcwd(), "probe": os.environ.get("PROBE"), "name": __name__,
                  "path0": sys.path[0], "spec": getattr(__spec__, "name", None),
                  "tensorflow_imported": "tensorflow" in sys.modules}), flush=True)
how = sys.argv[1]
if how == "exit3":
    sys.exit(3)
if how == "message":
    sys.exit("a message")
if how == "raise":
    raise ValueError("raised")
if how == "kill":
    os.kill(os.getpid(), signal.SIGKILL)
if how == "sleep":
    signal.pause()
