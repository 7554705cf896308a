// Review enhancements; everything works without this file (plain links and forms).
(function () {
  "use strict";

  // Lazy review panels on the incident page. htmx loads them (hx-trigger="revealed"), except
  // inside an element with hx-disable, where htmx does nothing: there this loads them once,
  // and their forms stay plain forms that post and come back.
  function loadLazy(placeholder) {
    var url = placeholder.getAttribute("hx-get");
    if (!url || placeholder.dataset.reviewLoading) {
      return;
    }
    placeholder.dataset.reviewLoading = "1";
    fetch(url, { headers: { "HX-Request": "true" }, credentials: "same-origin" })
      .then(function (response) { return response.ok ? response.text() : null; })
      .then(function (html) {
        if (html) {
          var template = document.createElement("template");
          template.innerHTML = html;
          placeholder.replaceWith(template.content);
        }
      })
      .catch(function () { /* keep the plain link */ });
  }

  function initLazy() {
    var waiting = Array.prototype.filter.call(
      document.querySelectorAll("[data-review-lazy]"),
      function (el) { return el.closest("[hx-disable]"); }
    );
    if (!waiting.length) {
      return;
    }
    if (!("IntersectionObserver" in window)) {
      waiting.forEach(loadLazy);
      return;
    }
    var observer = new IntersectionObserver(function (entries) {
      entries.forEach(function (entry) {
        if (entry.isIntersecting) {
          observer.unobserve(entry.target);
          loadLazy(entry.target);
        }
      });
    });
    waiting.forEach(function (el) { observer.observe(el); });
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", initLazy);
  } else {
    initLazy();
  }

  // After htmx replaces the comment threads, keep the keyboard where the reader was: on the
  // thread they acted on if it is still there, else on the threads' heading.
  var lastThread = null;
  document.addEventListener("htmx:beforeRequest", function (event) {
    var thread = event.target.closest && event.target.closest(".comment-thread");
    lastThread = thread ? thread.id : null;
  });
  document.addEventListener("htmx:afterSwap", function (event) {
    if (!event.detail.target || event.detail.target.id !== "comments") {
      return;
    }
    var panel = document.getElementById("comments");
    if (!panel) {
      return;
    }
    var focus = (lastThread && document.getElementById(lastThread)) || panel.querySelector("h2");
    if (focus) {
      if (!focus.hasAttribute("tabindex")) {
        focus.setAttribute("tabindex", "-1");
      }
      focus.focus({ preventScroll: true });
    }
  });
})();
