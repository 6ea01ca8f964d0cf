"""Go/no-go judgement: the seed's rule, with the statistics that say how far to trust it."""
