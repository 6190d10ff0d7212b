// The Images pages: the add dialog, its tabs and the provider select. htmx does the requests.
(function () {
  "use strict";

  // Show only the chosen provider's fields; disabled fields of hidden sections are not submitted.
  function showProvider(form) {
    var select = form.querySelector("select[name=provider]");
    if (!select) return;
    form.querySelectorAll(".provider-section").forEach(function (section) {
      var on = section.dataset.provider === select.value;
      section.hidden = !on;
      section.disabled = !on;
    });
  }

  function selectTab(tab, focus) {
    var tablist = tab.closest("[role=tablist]");
    tablist.querySelectorAll("[role=tab]").forEach(function (t) {
      var on = t === tab;
      t.setAttribute("aria-selected", on ? "true" : "false");
      t.tabIndex = on ? 0 : -1;
      document.getElementById(t.getAttribute("aria-controls")).hidden = !on;
    });
    if (focus) tab.focus();
  }

  // The first field of the visible tab (not the close button the browser would pick).
  function focusFirstField(dialog) {
    var fields = dialog.querySelectorAll(
      "[role=tabpanel]:not([hidden]) :is(input:not([type=hidden]), select, textarea)"
    );
    for (var i = 0; i < fields.length; i++) {
      if (fields[i].offsetParent !== null && !fields[i].disabled) {
        fields[i].focus();
        return;
      }
    }
  }

  function init(root) {
    root.querySelectorAll("form[data-registry-form]").forEach(showProvider);
  }

  document.addEventListener("click", function (event) {
    var opener = event.target.closest("[data-open-dialog]");
    if (opener) {
      var dialog = document.getElementById(opener.dataset.openDialog);
      if (dialog && dialog.showModal) {
        event.preventDefault();
        dialog.showModal();
        focusFirstField(dialog);
      }
      return;
    }
    var closer = event.target.closest("[data-close-dialog]");
    if (closer) {
      closer.closest("dialog").close();
      return;
    }
    var tab = event.target.closest("[role=tab]");
    if (tab) {
      event.preventDefault();
      selectTab(tab, true);
    }
  });

  // Arrow keys, Home and End move between tabs; Space activates one (Enter already clicks a link).
  document.addEventListener("keydown", function (event) {
    var tab = event.target.closest && event.target.closest("[role=tab]");
    if (!tab) return;
    var tabs = Array.prototype.slice.call(tab.closest("[role=tablist]").querySelectorAll("[role=tab]"));
    var i = tabs.indexOf(tab);
    var next = {
      ArrowRight: tabs[(i + 1) % tabs.length],
      ArrowLeft: tabs[(i - 1 + tabs.length) % tabs.length],
      Home: tabs[0],
      End: tabs[tabs.length - 1],
      " ": tab,
    }[event.key];
    if (next) {
      event.preventDefault();
      selectTab(next, true);
    }
  });

  document.addEventListener("change", function (event) {
    if (event.target.matches("select[name=provider]")) showProvider(event.target.form);
  });

  document.addEventListener("htmx:beforeSwap", function (event) {
    // "The task queue is unavailable" (503) and "too many tests" (429) come with an inline message: show it.
    var status = event.detail.xhr.status;
    if ((status === 503 || status === 429) && event.detail.elt.closest(".test-form")) {
      event.detail.shouldSwap = true;
      event.detail.isError = false;
    }
  });

  document.addEventListener("htmx:afterSwap", function (event) {
    // After a failed save, put the keyboard on the first field that needs fixing.
    var invalid = document.querySelector("dialog[open] [aria-invalid=true]");
    if (invalid) invalid.focus();
  });

  document.addEventListener("DOMContentLoaded", function () {
    init(document);
    if (window.htmx) window.htmx.onLoad(init);
  });
})();
