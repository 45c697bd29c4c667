"""The error policy: expected failures print message and hint (exit 1), Ctrl-C exits 130,
anything else prints a short report with versions and where the traceback was written."""

from __future__ import annotations

import platform
import sys
import tempfile
import traceback
from collections.abc import Callable

import click

from evalhub import __version__
from evalhub.cli.output import console_redactor, err
from evalhub.core.errors import EvalhubError, SpecError
from evalhub.core.report import validation_text

EXIT_OK, EXIT_ERROR, EXIT_PENDING, EXIT_INTERRUPTED = 0, 1, 2, 130


def run_guarded(body: Callable[[], int]) -> int:
    try:
        return body()
    except SpecError as exc:
        err(validation_text(exc.diagnostics, 0).rsplit("\n\n", 1)[0])
        err(f"error: {exc.message}")
        return EXIT_ERROR
    except EvalhubError as exc:
        err(f"error: {exc.message}")
        if exc.hint:
            err(f"  hint: {exc.hint}")
        return EXIT_ERROR
    except click.exceptions.Exit as exc:
        return int(exc.exit_code)
    except click.exceptions.Abort:
        err("Interrupted.")
        return EXIT_INTERRUPTED
    except click.ClickException as exc:
        exc.show()
        return EXIT_ERROR
    except KeyboardInterrupt:
        err("Interrupted.")
        return EXIT_INTERRUPTED
    except Exception:
        return _unexpected()


def _unexpected() -> int:
    with tempfile.NamedTemporaryFile(
        "w", prefix="evalhub-crash-", suffix=".log", delete=False
    ) as log:
        log.write(f"evalhub {__version__}\npython {sys.version}\n{platform.platform()}\n\n")
        log.write(console_redactor().text(traceback.format_exc()))  # a key in a message, say
    kind, value, _ = sys.exc_info()
    err("An unexpected error has occurred: " + (f"{kind.__name__}: {value}" if kind else "?"))
    err(f"evalhub {__version__}, Python {platform.python_version()}, {platform.platform()}")
    err(f"The full report is in {log.name}; please attach it to a bug report.")
    return EXIT_ERROR
