// Starts Swagger UI for /docs. A file, not an inline script, so the page's CSP can forbid inline code.
(function () {
  "use strict";
  var script = document.currentScript;
  window.ui = SwaggerUIBundle({
    url: script.dataset.openapiUrl,
    dom_id: "#swagger-ui",
    layout: "BaseLayout",
    deepLinking: true,
    showExtensions: true,
    showCommonExtensions: true,
    // A reload keeps the token from Authorize (kept in this browser's localStorage).
    persistAuthorization: true,
    // The default validator badge calls a public web service; the docs stay on this origin.
    validatorUrl: null,
    presets: [SwaggerUIBundle.presets.apis, SwaggerUIBundle.SwaggerUIStandalonePreset],
  });
})();
