"""The argument types the commands share: a value they refuse is a usage error (exit 2) that
says what is wanted."""

import argparse
from datetime import date
from typing import TypeAlias

# what `add_subparsers` returns: cli.py's parser, to which each cli_*.py module adds its commands
Commands: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"


def day(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a day (YYYY-MM-DD): {text!r}") from None


def positive(text: str) -> int:
    if not (text.isascii() and text.isdigit()) or int(text) < 1:
        raise argparse.ArgumentTypeError(f"a whole number of at least 1, not {text!r}")
    return int(text)


def share(text: str) -> float:
    value = float(text)
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1: {text}")
    return value
