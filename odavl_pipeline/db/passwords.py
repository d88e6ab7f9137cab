"""The console's password hashes: PBKDF2-SHA256 with a random salt, checked in constant time."""

import hashlib
import hmac
import secrets

PASSWORD_ITERATIONS = 600_000


def hash_password(password: str, salt: bytes | None = None) -> str:
    """`password` hashed with `salt` (random when None), as `pbkdf2_sha256$rounds$salt$digest`."""
    salt = salt or secrets.token_bytes(16)
    digest = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, PASSWORD_ITERATIONS)
    return f"pbkdf2_sha256${PASSWORD_ITERATIONS}${salt.hex()}${digest.hex()}"


def verify_password(password: str, hashed: str | None) -> bool:
    """True when `password` matches a `hash_password` string; the digests are compared in
    constant time, and a missing or malformed hash costs as much as a real one."""
    try:
        scheme, iterations, salt, digest = (hashed or "").split("$")
        rounds, salt_bytes, expected = int(iterations), bytes.fromhex(salt), bytes.fromhex(digest)
        valid = scheme == "pbkdf2_sha256" and rounds > 0 and expected
    except ValueError:
        valid = False
    if not valid:
        rounds, salt_bytes, expected = PASSWORD_ITERATIONS, b"\0" * 16, b"\0" * 32
    actual = hashlib.pbkdf2_hmac("sha256", password.encode(), salt_bytes, rounds)
    return hmac.compare_digest(actual, expected) and bool(valid)
