"""Write the hostile-input corpus of tests/test_bad_inputs.py into a folder, to try by hand.

    python scripts/make_bad_inputs.py [OUT_DIR]      (default: ./bad-inputs)
    rschat ask --image OUT_DIR/black_8000x8000.png --json "describe the image"

The generator itself lives in tests/corpus.py (``make_corpus``), where the tests import it.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from corpus import make_corpus  # noqa: E402


def main(argv: list[str]) -> int:
    out = Path(argv[0] if argv else "bad-inputs")
    corpus = make_corpus(out)
    for name, path in sorted(corpus.items()):
        print(f"{path.stat().st_size:>10,} B  {name}  ({path.name!r})")
    print(f"wrote {len(corpus)} files to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
