"""The HTTP edge: Litestar app factory, controllers and the DCI error mapping."""
