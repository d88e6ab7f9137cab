"""The products' way in (CONTRACT.md section 9): API keys, and the HTTP API built on them."""
