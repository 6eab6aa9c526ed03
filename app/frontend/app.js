// Single-page app shell: CloudFront answers every unknown path with index.html,
// so the path the visitor asked for is the route.
document.addEventListener("DOMContentLoaded", () => {
  const route = document.getElementById("route");
  if (window.location.pathname !== "/") {
    route.textContent = `route: ${window.location.pathname}`;
  }
});
