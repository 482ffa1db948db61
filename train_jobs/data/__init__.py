"""Reading and checking uploads, Ray Data preprocessing and its cache."""
