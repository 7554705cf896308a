// Small progressive enhancements; every page works without this file.
(function () {
  "use strict";
  // htmx 2 does not swap 4xx/5xx responses; the views answer validation errors with 200 and
  // conflicts with 409, which we do want shown in place.
  document.addEventListener("htmx:beforeSwap", function (event) {
    if (event.detail.xhr.status === 409 || event.detail.xhr.status === 422) {
      event.detail.shouldSwap = true;
      event.detail.isError = false;
    }
  });
  // Wide tables scroll sideways on a phone; keyboard users must be able to reach that scroll.
  function makeScrollRegionsFocusable(root) {
    root.querySelectorAll(".table-wrap").forEach(function (region) {
      if (!region.hasAttribute("tabindex")) {
        region.setAttribute("tabindex", "0");
        region.setAttribute("role", "region");
        var caption = region.querySelector("caption, [data-label]");
        region.setAttribute("aria-label", caption ? caption.textContent.trim() : "Scrollable table");
      }
    });
  }
  document.addEventListener("DOMContentLoaded", function () { makeScrollRegionsFocusable(document); });
  document.addEventListener("htmx:afterSettle", function (event) { makeScrollRegionsFocusable(event.target); });
})();
