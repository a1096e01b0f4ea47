"""The people's side: the HTTP API and the web console (`qrtrace serve`), over the same runtime as the CLI."""
