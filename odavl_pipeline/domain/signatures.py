"""Error signatures: the normalized SHA-256 that groups occurrences of one error."""

import hashlib
import re

SIGNATURE_VERSION = "v1"

_WHITESPACE = re.compile(r"\s+")
_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
_HEX_LITERAL = re.compile(r"0x[0-9a-fA-F]+")
_DIGITS = re.compile(r"[0-9]+")


def normalize_message(message: str) -> str:
    """Collapse white space, then mask UUIDs, 0x literals and digit runs."""
    text = _WHITESPACE.sub(" ", message).strip()
    text = _UUID.sub("<uuid>", text)
    text = _HEX_LITERAL.sub("<hex>", text)
    return _DIGITS.sub("<n>", text)


def error_signature(detector: str, file: str, message: str) -> str:
    """Lowercase hex SHA-256 of `v1\\n detector \\n file \\n normalize(message)`."""
    text = f"{SIGNATURE_VERSION}\n{detector}\n{file}\n{normalize_message(message)}"
    return hashlib.sha256(text.encode("utf-8")).hexdigest()
