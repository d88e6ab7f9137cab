"""What the commands print (CONTRACT.md section 7): plain lines and tables, no markup. One module
per family of commands, as cli.py and the cli_*.py modules group them; `text` holds what they
share, `stages` what `run` shows of its Dagster run as it goes."""
