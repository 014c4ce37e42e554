// NIR web console: a little progressive enhancement. Every page works without it.
"use strict";
(function () {
  // Live progress of an operator's job (a rebuild or a snapshot): poll its status and
  // update the progress bar and the text; reload the page when it is done.
  var box = document.querySelector("[data-jobb]");
  if (box) {
    var bar = box.querySelector("progress");
    var text = box.querySelector("[data-jobb-tekst]");
    var poll = function () {
      fetch(box.getAttribute("data-jobb"), { headers: { Accept: "application/json" }, credentials: "same-origin" })
        .then(function (r) { return r.ok ? r.json() : null; })
        .then(function (j) {
          if (!j) { return; }
          if (bar && j.total > 0) { bar.max = j.total; bar.value = j.done; }
          if (text) { text.textContent = j.text; }
          if (j.running) { setTimeout(poll, 500); } else { window.location.reload(); }
        })
        .catch(function () { setTimeout(poll, 2000); });
    };
    setTimeout(poll, 500);
  }
  // Confirm a destructive form (delete a snapshot, retract an event) before sending it.
  document.querySelectorAll("form[data-bekreft]").forEach(function (f) {
    f.addEventListener("submit", function (e) {
      if (!window.confirm(f.getAttribute("data-bekreft"))) { e.preventDefault(); }
    });
  });
})();
