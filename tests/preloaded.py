"""Command-line runs for tests from an interpreter that has already imported TensorFlow and Keras.

Most of a tiny CLI run in a test is the interpreter importing TensorFlow and Keras (about 4 s of CPU
each time, some 190 runs in the suite). `install()` (tests/conftest.py) routes
`subprocess.run` calls (and `popen`) that start one of the project's commands with
`sys.executable` (`launch/*.py`, `bench/*.py`, `tests/**/*.py`, `-m affnet...`, `-m data_pipeline...`, `-m tests...`)
to a server per pytest process that imported numpy, TensorFlow and Keras once and forks a child per
command. The child is set up as `python` would set it up: the command's argv, environment, working
directory, `sys.path` (script folder or working directory, then PYTHONPATH, then the site), stdin
from /dev/null, stdout and stderr to files the caller reads (fd level: C++ logs included), a new
session when asked, fresh random seeds; it runs the script or module as `__main__` (runpy, as
`python FILE` and `python -m` do), then exits as the interpreter does (non-daemon threads joined,
atexit handlers, streams flushed) with the same exit status; a signal kills it as it would any
process. The project's own modules are imported by the child, never by the server.

A fresh interpreter is kept where start-up itself is under test, read from the call's environment:
TF_CPP_MIN_LOG_LEVEL other than the server's "2" (the CLIs' own silencing of TensorFlow),
AFFNET_TEST_FRESH_PYTHON=1 (import weight, warnings printed at start-up, memory), and any
interpreter option (`-c`, `-X`, `-W`) or a Python other than this one.
"""

import atexit
import json
import os
import selectors
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FRESH = "AFFNET_TEST_FRESH_PYTHON"
SERVER_ENV = {"TF_CPP_MIN_LOG_LEVEL": "2", "CUDA_VISIBLE_DEVICES": ""}
MODULES = ("affnet", "data_pipeline", "launch", "tests")
_ORIGINAL_RUN, _ORIGINAL_POPEN = subprocess.run, subprocess.Popen


# ----------------------------------------------------------------------------- the server

def _child(request, base_path, sockets, descriptors):
    """In the forked child: drop the server's sockets and pipe, become the command and never return."""
    code = 1
    try:
        for inherited in sockets:
            inherited.close()
        for descriptor in descriptors:
            os.close(descriptor)
        if request["new_session"]:
            os.setsid()
        signal.set_wakeup_fd(-1)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        os.chdir(request["cwd"])
        os.environ.clear()
        os.environ.update(request["env"])
        null = os.open(os.devnull, os.O_RDWR)
        os.dup2(null, 0)
        out = os.open(request["stdout"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC) if request["stdout"] else null
        err = out if request["stderr"] == "stdout" else (
            os.open(request["stderr"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC) if request["stderr"] else null)
        os.dup2(out, 1)
        os.dup2(err, 2)
        import random

        import numpy as np

        random.seed()
        np.random.seed()
        argv = request["argv"]
        python_path = [p for p in request["env"].get("PYTHONPATH", "").split(os.pathsep) if p]
        if argv[0] == "-m":
            sys.argv = [argv[1], *argv[2:]]
            sys.path[:] = [os.getcwd(), *python_path, *base_path]
            import runpy

            code = _exit_code(lambda: runpy._run_module_as_main(argv[1], alter_argv=True))
        else:
            sys.argv = list(argv)
            sys.path[:] = [os.path.dirname(os.path.abspath(argv[0])), *python_path, *base_path]
            import runpy

            code = _exit_code(lambda: runpy.run_path(argv[0], run_name="__main__"))
        threading._shutdown()
        atexit._run_exitfuncs()
    except BaseException:  # Set-up failed: say why where the caller reads stderr.
        import traceback

        traceback.print_exc()
    finally:
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except Exception:
                pass
        os._exit(code)


def _exit_code(main):
    """The exit status `python` gives for running `main` as the program."""
    try:
        main()
        return 0
    except SystemExit as done:
        if done.code is None:
            return 0
        if isinstance(done.code, int):
            return done.code
        print(done.code, file=sys.stderr)
        return 1
    except BaseException:
        sys.excepthook(*sys.exc_info())
        return 1


def serve(address):
    """Accept one JSON request per connection, fork its child, answer its pid, later its wait status."""
    import numpy  # noqa: F401
    import tensorflow  # noqa: F401
    import keras  # noqa: F401

    base_path = sys.path[1:]  # Without this file's folder: the child puts its own first.
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(address)
    listener.listen(16)
    wake_read, wake_write = os.pipe()
    os.set_blocking(wake_write, False)
    signal.set_wakeup_fd(wake_write)
    signal.signal(signal.SIGCHLD, lambda *_: None)
    selector = selectors.DefaultSelector()
    selector.register(listener, selectors.EVENT_READ, "accept")
    selector.register(wake_read, selectors.EVENT_READ, "child")
    selector.register(sys.stdin, selectors.EVENT_READ, "parent")  # EOF: the test process is gone.
    waiting = {}
    sys.stdout.flush()
    print("ready", flush=True)
    try:
        _serve_until_eof(listener, selector, wake_read, wake_write, waiting, base_path)
    finally:  # The test process is gone (xdist workers may end without atexit): leave nothing in /tmp.
        shutil.rmtree(os.path.dirname(address), ignore_errors=True)


def _serve_until_eof(listener, selector, wake_read, wake_write, waiting, base_path):
    while True:
        for key, _ in selector.select():
            if key.data == "parent":
                if not sys.stdin.readline():
                    return
            elif key.data == "accept":
                connection, _ = listener.accept()
                request = json.loads(connection.makefile().readline())
                sys.stdout.flush()
                sys.stderr.flush()
                pid = os.fork()
                if pid == 0:
                    _child(request, base_path, (listener, connection, *waiting.values()), (wake_read, wake_write))
                waiting[pid] = connection
                connection.sendall(f"{pid}\n".encode())
            else:
                os.read(wake_read, 4096)
                while waiting:
                    pid, status = os.waitpid(-1, os.WNOHANG)
                    if pid == 0:
                        break
                    connection = waiting.pop(pid, None)
                    if connection is not None:
                        try:
                            connection.sendall(f"{os.waitstatus_to_exitcode(status)}\n".encode())
                        except OSError:
                            pass
                        connection.close()


# ----------------------------------------------------------------------------- the client

class _Server:
    """The per-process server, started at the first routed command."""

    def __init__(self):
        self.folder = tempfile.mkdtemp(prefix="preloaded_")
        self.address = os.path.join(self.folder, "socket")
        env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
        env.update(SERVER_ENV)
        self.process = _ORIGINAL_POPEN([sys.executable, os.path.abspath(__file__), self.address], env=env,
                                       stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                       text=True)
        if self.process.stdout.readline().strip() != "ready":
            raise RuntimeError("the preloaded interpreter did not start")
        atexit.register(self.stop)

    def stop(self):
        self.process.stdin.close()  # The server returns at EOF; its running children finish on their own.
        self.process.wait()
        shutil.rmtree(self.folder, ignore_errors=True)


_server = None
_server_lock = threading.Lock()


def _get_server():
    global _server
    with _server_lock:
        if _server is None or _server.process.poll() is not None:
            _server = _Server()
        return _server


class PreloadedProcess:
    """What the tests use of `subprocess.Popen`: pid, poll, wait, kill, returncode; `output` reads what it wrote."""

    def __init__(self, args, cwd, env, stdout, stderr, new_session):
        server = _get_server()
        self.args = args
        self._files = {}
        for name, target in (("stdout", stdout), ("stderr", stderr)):
            if target == subprocess.PIPE:
                handle, path = tempfile.mkstemp(prefix=name, dir=server.folder)
                os.close(handle)
                self._files[name] = path
        request = {"argv": [str(a) for a in args[1:]], "cwd": os.fspath(cwd or os.getcwd()),
                   "env": dict(os.environ if env is None else env), "new_session": bool(new_session),
                   "stdout": self._files.get("stdout", ""),
                   "stderr": "stdout" if stderr == subprocess.STDOUT else self._files.get("stderr", "")}
        self._connection = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._connection.connect(server.address)
        self._connection.sendall((json.dumps(request) + "\n").encode())
        self._buffer = b""
        self.pid = int(self._line(None))
        self.returncode = None

    def _line(self, timeout):
        """The server's next answer; TimeoutError after `timeout` seconds (None: no limit, 0: ready now)."""
        self._connection.settimeout(timeout)
        try:
            while b"\n" not in self._buffer:
                data = self._connection.recv(64)
                if not data:
                    raise RuntimeError(f"the preloaded interpreter stopped while running {self.args}")
                self._buffer += data
        except (TimeoutError, BlockingIOError):
            raise TimeoutError from None
        line, self._buffer = self._buffer.split(b"\n", 1)
        return line.decode()

    def poll(self):
        if self.returncode is None:
            try:
                self.returncode = int(self._line(0))
                self._connection.close()
            except TimeoutError:
                pass
        return self.returncode

    def wait(self, timeout=None):
        if self.returncode is None:
            try:
                self.returncode = int(self._line(timeout))
            except TimeoutError:
                raise subprocess.TimeoutExpired(self.args, timeout) from None
            self._connection.close()
        return self.returncode

    def kill(self):
        if self.returncode is None:
            try:
                os.kill(self.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

    def output(self, text):
        """(stdout, stderr) as `subprocess` returns them, the files removed."""
        found = []
        for name in ("stdout", "stderr"):
            path = self._files.pop(name, None)
            if path is None:
                found.append(None)
                continue
            with open(path, "rb") as f:
                data = f.read()
            os.remove(path)
            found.append(data.decode(errors="replace").replace("\r\n", "\n") if text else data)
        return tuple(found)


def _routable(args, kwargs):
    """Whether a `subprocess` call starts one of the project's commands in a way the server can run."""
    if not isinstance(args, (list, tuple)) or len(args) < 2 or str(args[0]) != sys.executable:
        return False
    if set(kwargs) - {"cwd", "env", "stdout", "stderr", "capture_output", "text", "timeout", "check",
                      "start_new_session", "universal_newlines"}:
        return False
    env = os.environ if kwargs.get("env") is None else kwargs["env"]
    if env.get(FRESH) == "1" or any(env.get(k) != v for k, v in SERVER_ENV.items()):
        return False
    first = str(args[1])
    if first == "-m":
        return len(args) > 2 and str(args[2]).split(".")[0] in MODULES
    if first.startswith("-") or not first.endswith(".py"):
        return False
    path = os.path.abspath(os.path.join(os.fspath(kwargs.get("cwd") or os.getcwd()), first))
    return path.startswith(ROOT + os.sep) and os.path.isfile(path)


def _run(args, **kwargs):
    if not _routable(args, kwargs):
        return _ORIGINAL_RUN(args, **kwargs)
    capture = kwargs.get("capture_output", False)
    text = kwargs.get("text", False) or kwargs.get("universal_newlines", False)
    process = PreloadedProcess(args, kwargs.get("cwd"), kwargs.get("env"),
                               subprocess.PIPE if capture else kwargs.get("stdout"),
                               subprocess.PIPE if capture else kwargs.get("stderr"),
                               kwargs.get("start_new_session", False))
    try:
        process.wait(kwargs.get("timeout"))
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
        raise
    stdout, stderr = process.output(text)
    done = subprocess.CompletedProcess(args, process.returncode, stdout, stderr)
    if kwargs.get("check"):
        done.check_returncode()
    return done


def popen(args, **kwargs):
    """`subprocess.Popen(args, **kwargs)`, or the same command on the server when it can run it and the
    caller reads no pipe (a `PreloadedProcess` has no stdout / stderr streams)."""
    if not _routable(args, kwargs) or subprocess.PIPE in (kwargs.get("stdout"), kwargs.get("stderr")):
        return _ORIGINAL_POPEN(args, **kwargs)
    return PreloadedProcess(args, kwargs.get("cwd"), kwargs.get("env"), kwargs.get("stdout"), kwargs.get("stderr"),
                            kwargs.get("start_new_session", False))


def install():
    """Route the project's commands started by `subprocess.run` to the server (`Popen` callers that can
    use it call `popen`: a `Popen` class replaced by a function would break isinstance checks)."""
    subprocess.run = _run


if __name__ == "__main__":
    serve(sys.argv[1])
