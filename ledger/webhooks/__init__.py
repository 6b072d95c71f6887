"""Pure webhook rules: secrets and signatures, the retry schedule, destination checks."""
