"""HTTP layer: the Litestar app, configuration, auth, errors and one module per audience."""
