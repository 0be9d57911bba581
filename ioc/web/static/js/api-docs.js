// The API's interactive description (/api/v1/docs): Swagger UI started from a file of this site, since
// the pages' Content-Security-Policy runs no inline script. Its requests carry the session cookie.
window.SwaggerUIBundle({
  url: "/api/v1/openapi.json",
  dom_id: "#swagger-ui",
  layout: "BaseLayout",
  deepLinking: true,
  showExtensions: true,
  showCommonExtensions: true,
  presets: [window.SwaggerUIBundle.presets.apis, window.SwaggerUIBundle.SwaggerUIStandalonePreset],
});
