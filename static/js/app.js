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
// Focus inside an element: its first button, else the element itself.
function focusInside(element) {
  "use strict";
  var target = element.querySelector("button") || element;
  if (target === element && !element.hasAttribute("tabindex")) element.setAttribute("tabindex", "-1");
  target.focus();
}
// A swap that replaces the focused element (a live update of the slot a student is on, a row being saved) keeps the
// focus in the same place instead of dropping it to the top of the page.
(function () {
  "use strict";
  var lastFocused = null;
  document.addEventListener("focusin", function (event) { lastFocused = event.target; });
  document.addEventListener("htmx:afterSettle", function () {
    if (!lastFocused || lastFocused.isConnected) return;
    if (document.activeElement && document.activeElement !== document.body) return;
    var holder = lastFocused.closest("[id]");
    var replacement = holder && document.getElementById(holder.id);
    lastFocused = null;
    if (replacement) focusInside(replacement);
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
    if (cell) focusInside(cell);
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
      // The words come from the page, in its language.
      el.textContent = state === "on" ? el.dataset.liveOn : el.dataset.liveOff;
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
// The phone menu: a button opens and closes the site's links.
(function () {
  "use strict";
  var toggle = document.querySelector(".menu-toggle");
  var menu = document.getElementById("main-menu");
  if (!toggle || !menu) return;
  toggle.addEventListener("click", function () {
    var open = toggle.getAttribute("aria-expanded") !== "true";
    toggle.setAttribute("aria-expanded", open ? "true" : "false");
    menu.classList.toggle("open", open);
  });
  document.addEventListener("keydown", function (event) {
    if (event.key === "Escape" && menu.classList.contains("open")) {
      menu.classList.remove("open");
      toggle.setAttribute("aria-expanded", "false");
      toggle.focus();
    }
  });
})();
// hx-confirm asks in the app's own dialog (the browser's confirm() cannot be styled or read well on a phone).
(function () {
  "use strict";
  var dialog = document.getElementById("confirm-dialog");
  if (!dialog) return;
  var pending = null;
  var opener = null;
  document.addEventListener("htmx:confirm", function (event) {
    var question = event.detail.question;
    if (!question) return;
    event.preventDefault();
    pending = event.detail;
    opener = document.activeElement;
    document.getElementById("confirm-dialog-question").textContent = question;
    dialog.showModal();
    dialog.querySelector('[data-confirm="no"]').focus();
  });
  dialog.addEventListener("click", function (event) {
    var choice = event.target.closest && event.target.closest("[data-confirm]");
    if (!choice) return;
    var go = choice.getAttribute("data-confirm") === "yes";
    dialog.close();
    if (go && pending) pending.issueRequest(true);
    pending = null;
  });
  dialog.addEventListener("close", function () {
    pending = null;
    if (opener && opener.isConnected) opener.focus();
  });
})();
// While a form is on its way its submit button is busy (disabled, aria-busy), so a second tap sends nothing twice;
// a new submission clears the toasts of the previous one.
(function () {
  "use strict";
  function submitButtons(elt) {
    var form = elt && elt.closest ? elt.closest("form") : null;
    return form ? form.querySelectorAll('button[type="submit"], button:not([type])') : [];
  }
  function setBusy(elt, busy) {
    var buttons = submitButtons(elt);
    if (!buttons.length && elt && elt.tagName === "BUTTON") buttons = [elt];
    buttons.forEach(function (button) {
      if (busy) { button.setAttribute("aria-busy", "true"); button.disabled = true; }
      else { button.removeAttribute("aria-busy"); button.disabled = false; }
    });
  }
  document.addEventListener("htmx:beforeRequest", function (event) {
    var elt = event.detail.elt;
    if (elt && (elt.tagName === "FORM" || elt.closest("form"))) {
      var toasts = document.getElementById("toasts");
      if (toasts) toasts.innerHTML = "";
    }
    setBusy(elt && elt.tagName === "FORM" ? elt.querySelector("button") : elt, true);
  });
  document.addEventListener("htmx:afterRequest", function (event) {
    var elt = event.detail.elt;
    setBusy(elt && elt.tagName === "FORM" ? elt.querySelector("button") : elt, false);
  });
  // A plain (not htmx) form post: the button shows it is busy until the next page loads.
  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (form.hasAttribute("hx-post") || form.hasAttribute("hx-get")) return;
    window.setTimeout(function () { setBusy(form.querySelector("button"), true); }, 0);
  });
})();
// Time zones: the browser knows the person's zone. Registration preselects it; a signed-in person whose
// saved zone differs is offered to switch (once per zone, remembered in this browser).
(function () {
  "use strict";
  var zone;
  try { zone = Intl.DateTimeFormat().resolvedOptions().timeZone; } catch (e) { return; }
  if (!zone) return;
  document.querySelectorAll("select[data-browser-zone]").forEach(function (select) {
    if (select.dataset.chosen === "true") return;
    var option = Array.prototype.find.call(select.options, function (o) { return o.value === zone; });
    if (option) { select.value = zone; select.dispatchEvent(new Event("change")); }
  });
  document.querySelectorAll("[data-zone-offer]").forEach(function (offer) {
    var saved = offer.getAttribute("data-zone-offer");
    var dismissed = null;
    try { dismissed = window.localStorage.getItem("zone-offer-dismissed"); } catch (e) { dismissed = null; }
    if (saved === zone || dismissed === zone) return;
    offer.querySelectorAll("[data-browser-zone-name]").forEach(function (el) { el.textContent = zone; });
    offer.querySelectorAll("input[name=timezone]").forEach(function (el) { el.value = zone; });
    offer.hidden = false;
    offer.querySelectorAll("[data-dismiss-zone]").forEach(function (button) {
      button.addEventListener("click", function () {
        try { window.localStorage.setItem("zone-offer-dismissed", zone); } catch (e) { /* private mode */ }
        offer.hidden = true;
      });
    });
  });
})();
// Date fields show the date the way the app writes dates ("Tue 1 Dec 2026", "Di., 1. Dez. 2026"), in the page's
// language, whatever the browser's own format.
(function () {
  "use strict";
  var format;
  try {
    var language = document.documentElement.lang === "en" ? "en-GB" : document.documentElement.lang;
    format = new Intl.DateTimeFormat(language || "en-GB", { weekday: "short", day: "numeric", month: "short", year: "numeric", timeZone: "UTC" });
  } catch (e) { return; }
  function describe(input) {
    var hint = input.nextElementSibling;
    if (!hint || !hint.classList.contains("date-hint")) {
      hint = document.createElement("small");
      hint.className = "date-hint";
      hint.setAttribute("aria-hidden", "true");
      input.insertAdjacentElement("afterend", hint);
    }
    var value = input.value ? new Date(input.value + "T00:00:00Z") : null;
    hint.textContent = value && !isNaN(value) ? format.format(value).replace(",", "") : "";
  }
  function all(root) { (root || document).querySelectorAll('input[type="date"]').forEach(describe); }
  document.addEventListener("input", function (event) { if (event.target.matches && event.target.matches('input[type="date"]')) describe(event.target); });
  document.addEventListener("htmx:afterSettle", function (event) { all(event.detail.elt); });
  all();
})();
