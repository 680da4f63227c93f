"""What every ``prepare_*.py`` script shares: the default root, the ``--force`` /
``--no-progress`` options, the "already generated" check of a
:class:`~omgseg.utils.file_io.ManagedOutput`, and turning
refusals and bad input into a one-line error and a non-zero exit status."""
import functools
import os
import sys
from typing import Callable, List, Optional

from omgseg.utils.file_io import ManagedOutput, OutputRefusedError

__all__ = ["DEFAULT_ROOT", "add_output_arguments", "already_generated", "cli_main"]

DEFAULT_ROOT = os.path.expanduser(os.getenv("DETECTRON2_DATASETS", "datasets"))


def add_output_arguments(parser) -> None:
    parser.add_argument("--force", action="store_true",
                        help="regenerate even if up to date; also accept an output folder this "
                             "script wrote without a manifest (e.g. an older version). Only the "
                             "output's own files are replaced; nothing else is deleted")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")


def already_generated(out: ManagedOutput) -> bool:
    """True (and says so) if ``out`` is up to date; refuses unsafe outputs (see
    :meth:`ManagedOutput.up_to_date`). Otherwise the caller writes it with ``out.writing()``."""
    if out.up_to_date():
        print(f"{out.describe()}: already generated (same parameters; --force regenerates)")
        return True
    return False


def cli_main(main: Callable[[Optional[List[str]]], int]) -> Callable[[Optional[List[str]]], int]:
    """Decorate a script's ``main``: a refused output (exit status 2) or bad input such as a
    missing file or a malformed annotation (exit status 1) prints ``error: <message>`` on
    stderr instead of a traceback."""

    @functools.wraps(main)
    def wrapper(argv: Optional[List[str]] = None) -> int:
        try:
            return main(argv)
        except OutputRefusedError as e:
            print(f"error: {e}", file=sys.stderr)
            return 2
        except (FileNotFoundError, ValueError) as e:
            print(f"error: {e}", file=sys.stderr)
            return 1

    return wrapper
