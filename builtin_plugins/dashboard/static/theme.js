// Applies the saved light/dark choice before the first paint (no inline scripts: the CSP forbids them).
(function () {
  var saved = null;
  try { saved = window.localStorage.getItem("td-theme"); } catch (e) { /* storage unavailable */ }
  if (saved === "light" || saved === "dark") document.documentElement.setAttribute("data-theme", saved);
})();
