// Action items dashboard: "all on this page", the selection count, and showing the closing
// fields only when they are needed. Progressive enhancement: every form works without this.
(function () {
  "use strict";

  var CLOSED = { done: true, wont_do: true };

  function rowBoxes(root) {
    return Array.prototype.slice.call(
      (root || document).querySelectorAll('input[type="checkbox"][name="items"][form="bulk-form"]')
    );
  }

  function updateCount() {
    var boxes = rowBoxes();
    var checked = boxes.filter(function (box) { return box.checked; }).length;
    var counter = document.getElementById("selected-count");
    var all = document.getElementById("select-page");
    if (counter) {
      counter.textContent = checked ? "(" + checked + " selected)" : "";
    }
    if (all) {
      // "All on this page" is sent with the form, so it must be off unless every row is on.
      all.indeterminate = checked > 0 && checked < boxes.length;
      all.checked = boxes.length > 0 && checked === boxes.length;
    }
  }

  // Shows the closing fields that the chosen status needs: the link and the verification for
  // "done", the reason for "won't do"; opens the bulk bar's <details> when closing.
  function syncClosing(container) {
    var select = document.getElementById(container.getAttribute("data-closing-for"));
    if (!select) { return; }
    var status = select.value;
    if (container.tagName === "DETAILS") {
      if (CLOSED[status]) { container.open = true; }
    } else {
      container.hidden = !CLOSED[status];
    }
    container.querySelectorAll("input, textarea").forEach(function (input) {
      var field = input.closest(".field");
      if (!field) { return; }
      var forDone = input.name === "change_url" || input.name === "verification";
      field.hidden = CLOSED[status] ? (status === "done" ? !forDone : forDone) : false;
    });
  }

  function syncAll(root) {
    (root || document).querySelectorAll("[data-closing-for]").forEach(syncClosing);
    updateCount();
  }

  document.addEventListener("change", function (event) {
    var target = event.target;
    if (target.id === "select-page") {
      rowBoxes().forEach(function (box) { box.checked = target.checked; });
      updateCount();
    } else if (target.name === "items" && target.getAttribute("form") === "bulk-form") {
      updateCount();
    } else if (target.tagName === "SELECT" && target.name === "status") {
      document.querySelectorAll('[data-closing-for="' + target.id + '"]').forEach(syncClosing);
    }
  });

  // The counts beside the filters arrive in a second request and replace the filter form. A
  // reply to a request that started before the person last touched the form is out of date:
  // swapping it in would undo their choice, so it is dropped (a fresh one is on its way).
  var lastTouch = 0;
  var latestCounts = null;
  function isCounts(detail) {
    var path = (detail.pathInfo && detail.pathInfo.requestPath) || "";
    return path.indexOf("/actions/facets/") === 0;
  }
  function touched(event) {
    if (event.target.form && event.target.form.id === "filters") { lastTouch = Date.now(); }
  }
  document.addEventListener("input", touched, true);
  document.addEventListener("change", touched, true);
  document.addEventListener("htmx:beforeRequest", function (event) {
    if (isCounts(event.detail)) {
      latestCounts = event.detail.xhr;
      event.detail.xhr.debriefStarted = Date.now();
    }
  });
  document.addEventListener("htmx:beforeSwap", function (event) {
    if (!isCounts(event.detail)) { return; }
    var xhr = event.detail.xhr;
    if (xhr !== latestCounts || xhr.debriefStarted < lastTouch) {
      event.detail.shouldSwap = false;
    }
  });

  document.addEventListener("DOMContentLoaded", function () { syncAll(document); });
  document.addEventListener("htmx:load", function (event) { syncAll(event.target); });
})();
