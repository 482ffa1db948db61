"""What a run hands back: archives and the results report."""
