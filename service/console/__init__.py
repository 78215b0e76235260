"""The operator console's static files (index.html, console.js, console.css)."""
