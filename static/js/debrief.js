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
})();
