"""What a study claims, declared once, and the tests that decide each claim (torch-free)."""
