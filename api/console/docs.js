// Starts Swagger UI on /docs (the page may not run inline script: see DOCS_POLICY in api/app.py).
// No validator badge: it would load an image from another site.
window.ui = SwaggerUIBundle({
  url: "/openapi.json",
  dom_id: "#swagger-ui",
  deepLinking: true,
  validatorUrl: null,
  presets: [SwaggerUIBundle.presets.apis],
  layout: "BaseLayout",
});
