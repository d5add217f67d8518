"""operators"""

__all__: list[str] = []
