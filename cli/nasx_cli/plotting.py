"""matplotlib without a display, and saving a figure with a one-line error."""

from __future__ import annotations

from pathlib import Path

from nasx.errors import NasxError


def pyplot():
    import matplotlib

    matplotlib.use("Agg")  # files only: works on machines without a display
    import matplotlib.pyplot as plt

    return plt


def save(figure, path: str) -> None:
    plt = pyplot()
    try:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        figure.savefig(path, dpi=120)
    except OSError as exc:
        raise NasxError(f"cannot write {path!r}: {exc.strerror}") from None
    finally:
        plt.close(figure)
