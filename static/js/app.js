// Focus and toasts after htmx swaps; no inline scripts anywhere (CSP).
(function () {
  "use strict";
  function focusFirstError() {
    var slot = document.querySelector(".field-error:not(:empty)");
    if (!slot) return;
    var field = document.querySelector('[aria-describedby~="' + slot.id + '"]');
    if (field) { field.setAttribute("aria-invalid", "true"); field.focus(); }
  }
  function clearValidFields() {
    document.querySelectorAll(".field-error:empty").forEach(function (slot) {
      var field = document.querySelector('[aria-describedby~="' + slot.id + '"]');
      if (field) field.removeAttribute("aria-invalid");
    });
  }
  document.addEventListener("htmx:oobAfterSwap", function () { clearValidFields(); focusFirstError(); });
  // Toasts leave after a while; errors stay longer.
  new MutationObserver(function (mutations) {
    mutations.forEach(function (m) {
      m.addedNodes.forEach(function (node) {
        if (node.nodeType !== 1) return;
        var toasts = node.classList.contains("toast") ? [node] : node.querySelectorAll(".toast");
        toasts.forEach(function (t) {
          setTimeout(function () { t.remove(); }, t.classList.contains("toast-error") ? 10000 : 5000);
        });
      });
    });
  }).observe(document.getElementById("toasts") || document.body, { childList: true, subtree: true });
  // Focus lands on the element a swap names with data-focus, else stays where it was.
  document.addEventListener("htmx:afterSettle", function (event) {
    var target = event.detail.elt && event.detail.elt.querySelector && event.detail.elt.querySelector("[data-focus]");
    if (target) target.focus();
  });
})();
// The booking dialog: opened as a modal when htmx puts it on the page, closed by its buttons or Escape;
// focus goes back to the slot cell it came from.
(function () {
  "use strict";
  var returnTo = null;
  document.addEventListener("htmx:beforeRequest", function (event) {
    var elt = event.detail.elt;
    if (elt && elt.closest && elt.closest(".slot-cell") && elt.getAttribute("hx-target") === "#dialog-host") {
      returnTo = elt.closest(".slot-cell").id;
    }
  });
  function restoreFocus() {
    var cell = returnTo && document.getElementById(returnTo);
    if (!cell) return;
    var target = cell.querySelector("button") || cell;
    if (target === cell) cell.setAttribute("tabindex", "-1");
    target.focus();
  }
  document.addEventListener("htmx:afterSettle", function (event) {
    var host = document.getElementById("dialog-host");
    if (!host || event.detail.target !== host) return;
    var dialog = host.querySelector("dialog");
    if (!dialog) { restoreFocus(); return; }
    if (!dialog.open) dialog.showModal();
    var focus = dialog.querySelector("[data-focus]") || dialog.querySelector("#booking-refusal");
    if (focus) { if (!focus.matches("input,button,a")) focus.setAttribute("tabindex", "-1"); focus.focus(); }
    dialog.addEventListener("close", function () { host.innerHTML = ""; restoreFocus(); });
  });
  document.addEventListener("click", function (event) {
    var button = event.target.closest && event.target.closest("[data-close-dialog]");
    if (!button) return;
    var dialog = button.closest("dialog");
    if (dialog) dialog.close();
  });
})();
// Live streams: after a reconnect, re-fetch what is on screen so no change made meanwhile is missed.
(function () {
  "use strict";
  var opened = new WeakSet();
  function setLive(state) {
    document.body.dataset.live = state;
    document.querySelectorAll("[data-live-status]").forEach(function (el) {
      el.textContent = state === "on" ? "● Live" : "○ Reconnecting…";
    });
  }
  document.addEventListener("htmx:sseOpen", function (event) {
    var elt = event.detail.elt || event.target;
    if (opened.has(elt)) htmx.trigger(document.body, "oh-resync");
    opened.add(elt);
    setLive("on");
  });
  document.addEventListener("htmx:sseError", function () { setLive("off"); });
})();
