"""NAS-Bench-NLP (recurrent cells for language modelling) for nasx."""
