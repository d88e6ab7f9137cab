"""What `keys …` prints: `create` the new key alone on its last line, once."""

from odavl_pipeline.output.text import print_json


def print_created(key: str, row: dict) -> None:
    ends = f", expires {row['expires_at']:%Y-%m-%d %H:%M} UTC" if row["expires_at"] else ""
    print(
        f"API key {row['prefix']} {row['name']!r} for {row['email']} "
        f"({', '.join(row['scopes'])}{ends}); shown once, only its hash is stored:"
    )
    print(key)


def print_keys(rows: list[dict], as_json: bool) -> None:
    """Every key listed (never the key itself), newest first."""
    if as_json:
        from odavl_pipeline.api.keys import as_json as key_json

        print_json([key_json(row) for row in rows])
        return
    if not rows:
        print("no API keys (`keys create EMAIL --name N --scopes S` makes one)")
        return
    print(f"{'prefix':<10}{'state':<9}{'user':<28}{'created':<18}{'last used':<18}name, scopes")
    for row in rows:
        used = f"{row['last_used_at']:%Y-%m-%d %H:%M}" if row["last_used_at"] else "never"
        print(
            f"{row['prefix']:<10}{row['state']:<9}{row['email']:<28}"
            f"{row['created_at']:%Y-%m-%d %H:%M}  {used:<18}"
            f"{row['name']}: {', '.join(row['scopes'])}"
        )


def print_revoked(row: dict) -> None:
    print(
        f"API key {row['prefix']} {row['name']!r} of {row['email']} revoked at "
        f"{row['revoked_at']:%Y-%m-%d %H:%M:%S} UTC"
    )
