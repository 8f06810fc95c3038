"""Cost models: what a program costs when the NumPy backend runs it."""
from .model import CostModel, default_cost_model  # noqa: F401
