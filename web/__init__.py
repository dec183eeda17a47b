"""The web stage: export.py writes the page's static folder, serve.py serves it, shot.py screenshots it."""
