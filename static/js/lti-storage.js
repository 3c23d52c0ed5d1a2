// LTI client-side postMessage storage (1EdTech): when this frame keeps no cookie, the platform's storage frame
// (lti_storage_target) keeps the login's state and nonce. At login they are stored (lti.put_data) before going on to
// the platform; after the launch they are read back (lti.get_data) and posted with the id_token for verification.
// Only answers from the platform's origin count.
(function () {
  "use strict";
  var root = document.getElementById("lti-storage");
  if (!root) return;
  var data = root.dataset;
  var storage = data.target === "_parent" ? window.parent : window.parent.frames[data.target];
  var waiting = {};
  var sequence = 0;
  window.addEventListener("message", function (event) {
    var answer = event.data;
    if (event.origin !== data.origin || !answer || !waiting[answer.message_id]) return;
    var settle = waiting[answer.message_id];
    delete waiting[answer.message_id];
    settle(answer.error ? null : answer);
  });
  function ask(message) {
    return new Promise(function (resolve) {
      var id = "oh-" + Date.now() + "-" + (sequence += 1);
      waiting[id] = resolve;
      message.message_id = id;
      try {
        storage.postMessage(message, data.origin);
      } catch (error) {
        delete waiting[id];
        resolve(null);
        return;
      }
      setTimeout(function () { if (waiting[id]) { delete waiting[id]; resolve(null); } }, 5000);
    });
  }
  if (data.mode === "login") {
    Promise.all([
      ask({ subject: "lti.put_data", key: "state_" + data.state, value: data.state }),
      ask({ subject: "lti.put_data", key: "nonce_" + data.nonce, value: data.nonce }),
    ]).then(function () {
      // Stored or not, go on: where the state cookie was kept, the launch needs no storage.
      window.location.href = data.next;
    });
    return;
  }
  Promise.all([
    ask({ subject: "lti.get_data", key: "state_" + data.state }),
    ask({ subject: "lti.get_data", key: "nonce_" + data.nonce }),
  ]).then(function (answers) {
    if (!answers[0] || !answers[1]) {
      document.querySelector("[data-storage-failed]").hidden = false;
      return;
    }
    root.elements.stored_state.value = answers[0].value;
    root.elements.stored_nonce.value = answers[1].value;
    root.submit();
  });
})();
