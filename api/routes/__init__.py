"""Route families of the API, one module each; they parse and answer, the service decides."""
