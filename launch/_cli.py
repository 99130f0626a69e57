"""The one entry-point wrapper of the absl scripts in launch/ (see `data_pipeline.base.cli`).

`run(main)` replaces `app.run(main)`: TensorFlow's C++ logs are silenced
before it loads; `--help` (and --helpfull/--helpshort) prints and exits 0
(absl exits 1); a bad flag value, an unknown flag, a missing required flag,
`app.UsageError` and the user errors of `data_pipeline.base.cli.USER_ERRORS` print
one line `error: ...` on stderr and exit 2, without a traceback. TensorFlow's and
absl's INFO lines show only with `--verbosity=0` (or TF_CPP_MIN_LOG_LEVEL=0).
"""

import sys
from typing import Callable, Optional, Sequence, Tuple, Type

from data_pipeline.base import cli

cli.silence_tensorflow()  # On import: the scripts import this module before anything loads TensorFlow.

from absl import app, flags  # noqa: E402

from affnet import configs  # noqa: E402

HELP_FLAGS = ("-h", "-?", "--help", "-help", "--helpshort", "-helpshort", "--helpfull", "-helpfull",
              "--helpxml", "-helpxml")


def asks_for_help(argv: Sequence[str]) -> bool:
    return any(arg in HELP_FLAGS for arg in argv[1:])


def _parse_flags(argv):
    try:
        # Flagfiles by bare name resolve to the shipped configurations (`affnet.configs`).
        return flags.FLAGS(configs.expand_flagfiles(argv))
    except (FileNotFoundError, ValueError) as error:
        cli.report_and_exit(error)
    except flags.Error as error:
        cli.report_and_exit(error)
    except SystemExit as exit_request:
        # absl's help flags print the help and exit 1: asking for help is not an error.
        if asks_for_help(argv) and exit_request.code == 1:
            sys.exit(0)
        raise


def run(main: Callable, argv: Optional[Sequence[str]] = None,
        user_errors: Tuple[Type[BaseException], ...] = ()) -> None:
    """`app.run(main, argv)` with the conventions above; `user_errors` adds exception types (e.g. DecodeError)."""
    caught = cli.USER_ERRORS + (app.UsageError,) + tuple(user_errors)

    def guarded(args):
        cli.quiet_python_logging(flags.FLAGS["verbosity"].present)  # absl's app.run has just turned INFO on.
        cli.import_tensorflow_quietly()  # After flag parsing: `--help` never loads TensorFlow.
        try:
            return main(args)
        except caught as error:
            cli.report_and_exit(error)

    app.run(guarded, argv=list(sys.argv if argv is None else argv), flags_parser=_parse_flags)
