"""The work: dataset checks, Ray Data preprocessing, Ray Train fine-tuning, artifacts."""
