"""Positions in words for pixel coordinates (image north up)."""


def place(x: float, y: float, width: int, height: int) -> str:
    """'the north-west', 'the centre', ... for a pixel position in a width x height image."""
    col = "west" if x < width / 3 else "east" if x > 2 * width / 3 else ""
    row = "north" if y < height / 3 else "south" if y > 2 * height / 3 else ""
    return "the centre" if not (row or col) else "the " + "-".join(p for p in (row, col) if p)
