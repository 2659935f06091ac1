"""Usage measured from our own records, spending caps enforced at admission, locations."""
