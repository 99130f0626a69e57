"""What every affnet command line shares: quiet TensorFlow, one-line user errors, exit codes.

Exit codes: 0 done, 1 ran but produced nothing (e.g. no input gave frames),
2 a user mistake (bad flag value, missing file, bad data named by file),
reported as one line `error: ...` on stderr with no traceback. Set
AFFNET_TRACEBACK=1 to see the traceback of such an error as well.

TensorFlow's C++ logging is silenced (TF_CPP_MIN_LOG_LEVEL=2) before anything
imports TensorFlow; a value the user set is kept. Python INFO lines of TensorFlow
and absl are off unless asked for (`quiet_python_logging`: `--verbosity=0` on the
absl commands, or TF_CPP_MIN_LOG_LEVEL=0). The absl entry points in
launch/ go through `launch/_cli.py`, which builds on this module; the argparse
ones (`python -m data_pipeline.preprocess`, `... adapters`,
`python -m affnet.weights.convert`) use `ArgumentParser` and `run`.
"""

import argparse
import contextlib
import importlib
import os
import sys
from typing import Callable, Optional, Sequence, Tuple, Type

from data_pipeline.base import atomic

USAGE_EXIT = 2
# What a user can cause by what they typed or pointed at. Anything else is a
# defect of this code and keeps its traceback.
# The disk full / a read-only output and an output folder in use by another run are reported the same way.
USER_ERRORS: Tuple[Type[BaseException], ...] = (ValueError, FileNotFoundError, NotADirectoryError,
                                                IsADirectoryError, PermissionError, atomic.StorageError,
                                                atomic.LockedError)


# TF_CPP_MIN_LOG_LEVEL as the user set it (None: unset), read before `silence_tensorflow` sets a default.
USER_TF_LOG_LEVEL = os.environ.get("TF_CPP_MIN_LOG_LEVEL")


def quiet_python_logging(verbosity_asked: bool = False) -> None:
    """TensorFlow's and absl's Python INFO lines off (level WARNING) unless asked for.

    absl's `app.run` turns INFO on after parsing flags (its --verbosity default), so
    TensorFlow's Python INFO lines ("Sharding callback duration", SavedModel builder,
    fingerprint) would sit between a command's own progress lines. Asked for: `--verbosity`
    given (`verbosity_asked`), or TF_CPP_MIN_LOG_LEVEL=0 set by the user.
    """
    if verbosity_asked or USER_TF_LOG_LEVEL == "0":
        return
    from absl import logging

    logging.set_verbosity(logging.WARNING)


def silence_tensorflow() -> None:
    """TF_CPP_MIN_LOG_LEVEL=2 (warnings and info off) unless the user chose a level; call before TF loads."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


# Lines TensorFlow 2.21 writes to stderr at import whatever TF_CPP_MIN_LOG_LEVEL says
# (its absl logging starts before the level is read).
TENSORFLOW_NOISE = ("All log messages before absl::InitializeLog()", "oneDNN custom operations are on",
                    "cpu_feature_guard", "To enable the following instructions",
                    "This TensorFlow binary is optimized", "Unable to register cu", "TF-TRT Warning")


# What TFLite / LiteRT writes to stderr from C++ when an interpreter starts, whatever the log level.
LITERT_NOISE = ("Created TensorFlow Lite XNNPACK delegate",)


@contextlib.contextmanager
def stderr_without(noise: Sequence[str]):
    """Run the block with file descriptor 2 captured; lines holding one of `noise` are dropped, the rest
    are written back after it. C++ libraries write there directly, past Python's `sys.stderr`. A no-op
    when TF_CPP_MIN_LOG_LEVEL is 0 (the user asked for the logs)."""
    if os.environ.get("TF_CPP_MIN_LOG_LEVEL") == "0":
        yield
        return
    import tempfile

    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as captured:  # A file, not a pipe: a full pipe would block the block.
        os.dup2(captured.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            captured.seek(0)
            text = captured.read().decode(errors="replace")
            kept = [line for line in text.splitlines() if line and not any(n in line for n in noise)]
            if kept:
                sys.stderr.write("\n".join(kept) + "\n")


def import_tensorflow_quietly():
    """Import TensorFlow with its start-up lines (`TENSORFLOW_NOISE`) dropped from stderr; other lines pass.

    A no-op when TensorFlow is already imported or TF_CPP_MIN_LOG_LEVEL is 0
    (the user asked for its logs).
    """
    silence_tensorflow()
    if "tensorflow" in sys.modules:
        return importlib.import_module("tensorflow")
    with stderr_without(TENSORFLOW_NOISE):
        return importlib.import_module("tensorflow")


def one_line(error: BaseException) -> str:
    """`error: <message>` on one line (a multi-line message keeps its first line plus a count)."""
    text = str(error).strip() or type(error).__name__
    if isinstance(error, KeyError) and error.args:
        text = str(error.args[0])
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return "error: " + " ".join(lines)


def report_and_exit(error: BaseException, code: int = USAGE_EXIT) -> None:
    if os.environ.get("AFFNET_TRACEBACK"):
        import traceback

        traceback.print_exception(type(error), error, error.__traceback__)
    sys.stderr.write(one_line(error) + "\n")
    sys.stderr.flush()
    sys.exit(code)


def run(main: Callable[[Optional[Sequence[str]]], int], argv: Optional[Sequence[str]] = None,
        user_errors: Tuple[Type[BaseException], ...] = ()) -> None:
    """sys.exit(main(argv)), with `USER_ERRORS` (and `user_errors`) as one line and exit 2."""
    silence_tensorflow()
    quiet_python_logging()
    try:
        code = main(argv)
    except USER_ERRORS + tuple(user_errors) as error:
        report_and_exit(error)
    except KeyboardInterrupt:
        sys.stderr.write("error: interrupted\n")
        sys.exit(130)
    sys.exit(code or 0)


class ArgumentParser(argparse.ArgumentParser):
    """argparse with the shared convention: a bad argument is one line `error: ...`, exit 2.

    (argparse's own error() prints the usage block first; `--help` shows it.)
    """

    def error(self, message):
        sys.stderr.write(f"error: {message} (see {self.prog} --help)\n")
        sys.exit(USAGE_EXIT)
