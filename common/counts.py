"""The neuron counts a ratio implies, shared by the networks trained from scratch (ffs) and Selection."""


class SelectionError(ValueError):
    pass


def neuron_count(total, fraction, what, truncate=False):
    """total * fraction as an integer.

    The authors truncated the float product (0.7 * 650 = 454.99999999999994 -> 454, losing a
    neuron). By default we accept a product within float error of an integer and refuse any
    other; truncate=True reproduces the original int().
    """
    exact = total * fraction
    if truncate:
        return int(exact)
    n = round(exact)
    if abs(exact - n) > 1e-6:
        raise SelectionError(f"{what}: {total} x {fraction:g} = {exact:g} is not a whole number of neurons; "
                             f"choose a ratio for which it is (or pass --truncate_counts for the original int() truncation)")
    return n
