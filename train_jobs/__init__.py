"""The work, and the basics every layer shares: imports nothing from `cluster` or `serve_app`.

data/      upload checks, Ray Data preprocessing, the tokenised cache
training/  the Ray Train run, worker loop, evaluation and metrics
models/    model lookup, import and catalogue
results/   model and results archives, the report
errors.py, files.py, specs.py, config.py: the shared basics (domain errors, atomic files, typed specs).
"""
