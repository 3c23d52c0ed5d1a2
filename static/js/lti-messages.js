// Messages from the tool's LTI pages to the platform around them: a deep-linking answer posts itself back to the
// platform (form[data-auto-submit]); the registration's Done button tells the platform to close its window
// (LTI Dynamic Registration: the org.imsglobal.lti.close postMessage).
(function () {
  "use strict";
  var answer = document.querySelector("form[data-auto-submit]");
  if (answer) answer.submit();
  var done = document.querySelector("[data-lti-close]");
  if (done) {
    done.addEventListener("click", function () {
      (window.opener || window.parent).postMessage({ subject: "org.imsglobal.lti.close" }, "*");
    });
  }
})();
