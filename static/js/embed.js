// Inside an LMS frame. No inline scripts anywhere (CSP).
// The frame follows the page's height: the platform (Canvas, Moodle) resizes it on `lti.frameResize`,
// sent on load and after every htmx swap (a booking dialog, a week change, a live update).
(function () {
  "use strict";
  if (window.parent === window) return;
  function resize() {
    window.parent.postMessage({ subject: "lti.frameResize", height: document.body.scrollHeight }, "*");
  }
  window.addEventListener("load", resize);
  document.addEventListener("htmx:afterSettle", resize);
  document.addEventListener("embed:resize", resize);
})();
// The sign-in page asks whether this frame keeps cookies (Safari keeps none for embedded sites); where it does not,
// signing in here could never work, so the page offers the same view in a tab of its own instead.
(function () {
  "use strict";
  var probe = document.querySelector("[data-cookie-probe]");
  if (!probe) return;
  fetch(probe.dataset.cookieProbe, { credentials: "same-origin", headers: { Accept: "application/json" } })
    .then(function (response) { return response.json(); })
    .then(function (body) {
      if (body.cookies) return;
      probe.querySelector("[data-sign-in]").hidden = true;
      probe.querySelector("[data-cookies-blocked]").hidden = false;
      document.dispatchEvent(new Event("embed:resize"));
    });
})();
