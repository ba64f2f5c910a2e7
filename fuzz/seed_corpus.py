"""Writing a generated seed corpus: shared by the fuzz/gen_*_seeds.py scripts.

A generator builds a dict {file name: bytes}, every name starting with
"seed_", and calls write_seeds().  Files in the corpus directory that do not
start with "seed_" (inputs that once crashed, kept for regression) are never
touched; "seed_" files the generator no longer makes are removed, so the
directory always holds exactly what the generator says.
"""
import os
import sys


def write_seeds(target, seeds):
    """Writes seeds into corpus/<target>/, or into argv[1] when given."""
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(
        os.path.dirname(os.path.abspath(__file__)), "..", "corpus", target)
    os.makedirs(out, exist_ok=True)
    for name in os.listdir(out):
        if name.startswith("seed_") and name not in seeds:
            os.remove(os.path.join(out, name))
    for name, data in sorted(seeds.items()):
        with open(os.path.join(out, name), "wb") as f:
            f.write(data)
    print(f"wrote {len(seeds)} seeds to {os.path.normpath(out)}")
