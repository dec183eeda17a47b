"""The figures stage: the original's visualize options 0-4, the page's and the paper's figures from a generator."""
from figures.runner import run  # noqa: F401
