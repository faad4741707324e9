"""Health, the testing clock, the home page and shared templates."""
