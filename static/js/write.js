// The guided write-up: keeps the page's version in step with the server, says what is
// saved, keeps unsaved text safe and warns before leaving, and moves focus after swaps.
// Every step works without this file (plain form posts).
(function () {
  "use strict";

  var root = document.getElementById("write");
  if (!root) {
    return;
  }

  var VERSION = "X-Debrief-Version";
  var SAVED = "X-Debrief-Saved";
  var FOCUS = "X-Debrief-Focus";
  var NOT_SAVED = "X-Debrief-Not-Saved"; // the server's own "not saved" message (503)
  var RETRY_MS = 5000;
  var MAX_RETRY_MS = 60000;

  var dirty = new Set(); // "form-id:field-name" of changes not saved yet
  var leaving = false; // a plain form post or a redirect after saving is under way
  var failedFields = new Set(); // autosave fields whose last save failed
  var retryTimers = {}; // autosave field name → the pending retry, at most one each

  function keyOf(element) {
    var form = element.form;
    return ((form && form.id) || "page") + ":" + element.name;
  }

  function isTracked(element) {
    return (
      element.name &&
      element.form &&
      root.contains(element.form) &&
      element.type !== "hidden" &&
      element.type !== "submit" &&
      element.type !== "button"
    );
  }

  function forgetForm(form) {
    if (!form || !form.id) {
      return;
    }
    var prefix = form.id + ":";
    dirty.forEach(function (key) {
      if (key.indexOf(prefix) === 0) {
        dirty.delete(key);
      }
    });
  }

  function setVersion(value) {
    root.querySelectorAll('input[name="version"]').forEach(function (input) {
      input.value = value;
    });
  }

  function showWarning() {
    var warning = document.getElementById("unsaved-warning");
    if (warning) {
      warning.hidden = failedFields.size === 0;
    }
  }

  function statusOf(field) {
    return document.getElementById("save-" + field.dataset.autosave);
  }

  function hasConflict(status) {
    return status && status.querySelector(".conflict");
  }

  // Remember every change until it is saved.
  ["input", "change"].forEach(function (type) {
    root.addEventListener(type, function (event) {
      if (isTracked(event.target)) {
        dirty.add(keyOf(event.target));
      }
    });
  });

  // A plain post leaves the page on purpose (htmx posts are prevented and stay).
  root.addEventListener("submit", function (event) {
    if (!event.defaultPrevented) {
      leaving = true;
    }
  });

  window.addEventListener("beforeunload", function (event) {
    if (dirty.size > 0 && !leaving) {
      event.preventDefault();
      event.returnValue = "";
    }
  });

  document.body.addEventListener("htmx:configRequest", function (event) {
    var elt = event.detail.elt;
    var name = elt.dataset && (elt.dataset.autosave || elt.dataset.autosaveFor);
    var field = name && root.querySelector('[data-autosave="' + name + '"]');
    if (field) {
      field.dataset.sent = field.value;
      if (field.dataset.version && elt === field) {
        // This field alone was saved over someone else's version ("Keep mine"); the rest of
        // the page has not seen their changes, so only this field moves on.
        event.detail.parameters.version = field.dataset.version;
      }
      var status = statusOf(field);
      if (status && !hasConflict(status)) {
        status.textContent = "Saving…";
      }
    }
  });

  // Headers are read before htmx swaps or follows a redirect.
  document.body.addEventListener("htmx:beforeOnLoad", function (event) {
    var xhr = event.detail.xhr;
    var elt = event.detail.elt;
    if (xhr.status < 200 || xhr.status >= 300) {
      return;
    }
    var version = xhr.getResponseHeader(VERSION);
    var name = elt.dataset && (elt.dataset.autosave || elt.dataset.autosaveFor);
    var field = name && root.querySelector('[data-autosave="' + name + '"]');
    if (version && field && (elt.dataset.autosaveFor || field.dataset.version)) {
      field.dataset.version = version;
    } else if (version) {
      // Our own save, based on what this page shows: the whole page is at the new version.
      setVersion(version);
    }
    if (xhr.getResponseHeader("HX-Redirect")) {
      leaving = true; // the server saved and sends us on
    }
    if (!xhr.getResponseHeader(SAVED)) {
      return;
    }
    if (name) {
      failedFields.delete(name);
      window.clearTimeout(retryTimers[name]); // saved: no retry left to make
      delete retryTimers[name];
      showWarning();
      if (field && field.value === field.dataset.sent) {
        dirty.delete(keyOf(field));
      }
      return;
    }
    forgetForm(elt.tagName === "FORM" ? elt : elt.closest("form"));
  });

  // The server's own "not saved" (the database refuses writes: read-only, disk full) goes
  // into the field's status like "Saved" does; only the status is swapped, never the text.
  document.body.addEventListener("htmx:beforeSwap", function (event) {
    var xhr = event.detail.xhr;
    // detail.elt is the swap target here; the element that sent the request is in the config.
    var sender = event.detail.requestConfig && event.detail.requestConfig.elt;
    if (
      xhr.status === 503 &&
      xhr.getResponseHeader(NOT_SAVED) &&
      sender &&
      sender.dataset &&
      sender.dataset.autosave
    ) {
      event.detail.shouldSwap = true; // still an error: saveFailed below schedules the retry
    }
  });

  function retryDelay(xhr) {
    var seconds = xhr ? parseInt(xhr.getResponseHeader("Retry-After"), 10) : NaN;
    return isNaN(seconds) ? RETRY_MS : Math.min(Math.max(seconds * 1000, RETRY_MS), MAX_RETRY_MS);
  }

  // The server could not be reached, or answered with an error: keep the text, say so, retry.
  function saveFailed(event) {
    var elt = event.detail.elt;
    var xhr = event.detail.xhr;
    if (xhr && (xhr.status === 409 || xhr.status === 422)) {
      return; // shown in place by the swapped response
    }
    var reason = xhr && xhr.status ? "the server answered " + xhr.status : "no connection";
    if (elt.dataset && elt.dataset.autosave) {
      var name = elt.dataset.autosave;
      failedFields.add(name);
      var status = statusOf(elt);
      if (status && !(xhr && xhr.getResponseHeader(NOT_SAVED))) {
        status.innerHTML = "";
        var note = document.createElement("span");
        note.className = "not-saved";
        note.textContent =
          "Not saved (" + reason + "). Your text is still here; trying again…";
        status.appendChild(note);
      }
      showWarning();
      window.clearTimeout(retryTimers[name]);
      retryTimers[name] = window.setTimeout(function () {
        delete retryTimers[name];
        if (document.body.contains(elt)) {
          htmx.trigger(elt, "autosave-retry");
        }
      }, retryDelay(xhr));
      return;
    }
    leaving = false;
    var target = elt.closest("form") || elt;
    var message = target.querySelector(".request-failed");
    if (!message) {
      message = document.createElement("p");
      message.className = "request-failed";
      message.setAttribute("role", "alert");
      target.appendChild(message);
    }
    message.textContent =
      "That did not go through (" + reason + "). Nothing you typed is lost; try again in a moment.";
  }
  document.body.addEventListener("htmx:sendError", saveFailed);
  document.body.addEventListener("htmx:responseError", saveFailed);

  window.addEventListener("online", function () {
    root.querySelectorAll("[data-autosave]").forEach(function (field) {
      if (failedFields.has(field.dataset.autosave)) {
        htmx.trigger(field, "autosave-retry");
      }
    });
  });

  // Keyboard focus after a swap: where the server asks, else the first field with an error.
  document.body.addEventListener("htmx:afterSettle", function (event) {
    var xhr = event.detail.xhr;
    var wanted = xhr && xhr.getResponseHeader(FOCUS);
    var target = null;
    if (wanted) {
      wanted.split("||").some(function (selector) {
        target = document.querySelector(selector);
        return target !== null;
      });
    }
    // After an outerHTML swap the old target is gone; its replacement has the same id.
    var old = event.detail.target;
    var container = old && old.id ? document.getElementById(old.id) || old : old;
    if (!target && container && container.isConnected) {
      target = container.querySelector('[aria-invalid="true"], .errors[role="alert"]');
    }
    if (!target && container && event.detail.elt && !event.detail.elt.isConnected) {
      // The element that asked was replaced (a step form): start at the new content.
      target = container.querySelector("h1[tabindex], h2[tabindex]");
    }
    if (target) {
      if (!target.matches("a, button, input, select, textarea, [tabindex]")) {
        target.setAttribute("tabindex", "-1");
      }
      target.focus();
    }
  });
})();
