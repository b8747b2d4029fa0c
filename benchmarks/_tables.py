"""What every benchmark does with its finished table: print it and write it to a file."""

import os


def publish(text: str, out: str) -> None:
    """Prints ``text`` and writes it to ``out`` (creating its folder)."""
    print(text)
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    with open(out, "w", encoding="utf-8") as handle:
        handle.write(text)
