"""The web stage: export.py writes the page's static folder (font.py subsets its font), serve.py serves it, shot.py
screenshots it; the page's own files (index.html, text.js, figures.js, app.js, generator.js, style.css) lie beside."""
