"""The study's experiments: probe (epsilon table), relax (error along relaxations)."""
