"""UserError: a problem the user can fix, printed as one line with a non-zero exit (no traceback)."""
import logging
import sys


class UserError(Exception):
    """Bad input or settings. The message names the bad value, what was expected and the fix."""


class DiskError(UserError):
    """An output folder that cannot take the files (full, read-only): it stops the whole run, where a bad input
    file is skipped with its reason and the run goes on."""


def first_line(exc: BaseException, limit: int = 200) -> str:
    """The first line of an exception's message, at most `limit` characters ('' for an empty message): libraries'
    errors can run to pages, and a one-line error must stay one line."""
    lines = str(exc).splitlines()
    return lines[0][:limit] if lines else ""


def run_cli(main, parser) -> None:
    """Parse argv, run main(args); a UserError becomes one line on stderr and exit 2, Ctrl-C exit 130."""
    args = parser.parse_args()
    try:
        main(args)
    except UserError as exc:
        logging.getLogger(__name__).debug("user error", exc_info=True)
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:
        print("interrupted: outputs written so far are complete; rerun with --skip_existing to resume",
              file=sys.stderr)
        sys.exit(130)
