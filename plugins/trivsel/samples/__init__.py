"""Sample deliveries shaped like the municipalities' own, reproducing the evaluation report."""
