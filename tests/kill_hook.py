"""Runs a command that SIGKILLs itself at the COUNT-th atomic write (`data_pipeline.base.atomic`) of a file
whose name matches GLOB: at "write" with that file's temporary written and not yet renamed, at "rename" just
after its rename (tests/test_kill_anywhere.py: a kill at an exact moment, not at a time).

  python tests/kill_hook.py write|rename GLOB COUNT (-m MODULE | SCRIPT.py) ARGS...
"""

import fnmatch
import os
import runpy
import signal
import sys

from data_pipeline.base import atomic


def main():
    stage, pattern, count, command = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4:]
    replace, seen = atomic.replace_atomically, []

    def killing(path, write, temporary=""):
        if fnmatch.fnmatch(os.path.basename(path), pattern):
            seen.append(path)
        reached = len(seen) == count and seen[-1] == path
        if reached and stage == "write":
            write(temporary or atomic.temporary_path(path))
            os.kill(os.getpid(), signal.SIGKILL)
        replace(path, write, temporary)
        if reached:
            os.kill(os.getpid(), signal.SIGKILL)

    atomic.replace_atomically = killing
    if command[0] == "-m":
        sys.argv = command[1:]
        runpy.run_module(command[1], run_name="__main__", alter_sys=True)
    else:
        sys.argv = command
        sys.path.insert(0, os.path.dirname(os.path.abspath(command[0])))
        runpy.run_path(command[0], run_name="__main__")


if __name__ == "__main__":
    main()
