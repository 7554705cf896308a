// Chat-log preview helpers; the page works without this file (every control is a plain form).
(function () {
  "use strict";
  function setUp(root) {
    root.querySelectorAll(".chatlog-preview").forEach(function (form) {
      if (form.dataset.ready) { return; }
      form.dataset.ready = "1";
      var tools = form.querySelector("[data-chatlog-tools]");
      var boxes = form.querySelectorAll("input[name=pick]");
      function mark(box) {
        var row = box.closest("tr");
        if (row) { row.classList.toggle("is-unticked", !box.checked); }
      }
      boxes.forEach(function (box) {
        mark(box);
        box.addEventListener("change", function () { mark(box); });
      });
      if (tools) {
        tools.hidden = false;
        tools.addEventListener("click", function (event) {
          var button = event.target.closest("[data-tick]");
          if (!button) { return; }
          var on = button.dataset.tick === "all";
          boxes.forEach(function (box) { box.checked = on; mark(box); });
        });
      }
      // Status updates stand out as soon as their kind is picked, not only after a reload.
      form.querySelectorAll("[data-kind-select]").forEach(function (select) {
        select.addEventListener("change", function () {
          var row = select.closest("tr");
          if (!row) { return; }
          Array.prototype.slice.call(row.classList).forEach(function (name) {
            if (name.indexOf("kind-") === 0) { row.classList.remove(name); }
          });
          row.classList.add("kind-" + select.value);
        });
      });
    });
  }
  document.addEventListener("DOMContentLoaded", function () { setUp(document); });
  document.addEventListener("htmx:afterSettle", function (event) { setUp(event.target); });
})();
