"""HTTP edge: Starlette endpoints that parse, call one use case, and shape the response."""
