"""One walk over a JSON tree for the tests that check written results hold finite numbers."""

from collections.abc import Iterator


def json_numbers(tree, path: str = "$") -> Iterator[tuple[str, float]]:
    """``(path, value)`` for every int and float in a JSON tree (bools, None, str excluded)."""
    if isinstance(tree, dict):
        for k, v in tree.items():
            yield from json_numbers(v, f"{path}.{k}")
    elif isinstance(tree, list):
        for i, v in enumerate(tree):
            yield from json_numbers(v, f"{path}[{i}]")
    elif isinstance(tree, (int, float)) and not isinstance(tree, bool):
        yield path, float(tree)


def numbers(tree) -> list[float]:
    """Every number in a JSON tree, in order."""
    return [v for _, v in json_numbers(tree)]
