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
