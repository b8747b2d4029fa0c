"""Two ways of doing one thing, measured side by side: every item both ways in each round, the way that
goes first alternating from round to round (this machine's speed drifts, sometimes in steps), medians."""

import statistics


def interleaved(rounds, items, measure, describe):
    """``measure(item, arm)`` for ``arm`` True and False, every item, ``rounds`` times; returns
    ``{(item, arm): [result of each round]}``. Prints ``describe(item, arm, result)`` after each."""
    results = {(item, arm): [] for item in items for arm in (True, False)}
    for round_index in range(rounds):
        for item in items:
            for arm in (True, False) if round_index % 2 == 0 else (False, True):
                result = measure(item, arm)
                results[(item, arm)].append(result)
                print(f"round {round_index + 1}/{rounds} {describe(item, arm, result)}", flush=True)
    return results


def median(rows, key):
    """The median of ``row[key]`` over ``rows``."""
    return statistics.median(row[key] for row in rows)
