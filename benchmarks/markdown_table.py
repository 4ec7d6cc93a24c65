"""Print a benchmark's Markdown table and optionally store it under ``benchmarks/results/``."""
from pathlib import Path


def report(title, intro, header, rows, name, write):
    """Print ``# title``, ``intro`` and the table; with ``write``, also save it as ``results/<name>.md``.

    Parameters
    ----------
    header : list of str
    rows : list of list of str
    """
    text = "\n".join([f"# {title}", "", intro, "", table(header, rows)]) + "\n"
    print(text)
    if write:
        target = Path(__file__).resolve().parent / "results" / f"{name}.md"
        target.write_text(text, encoding="utf-8")
        print(f"wrote {target}")


def table(header, rows):
    """A Markdown table: ``header`` (list of str) and ``rows`` (list of lists of str)."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return "\n".join(lines + ["| " + " | ".join(row) + " |" for row in rows])
