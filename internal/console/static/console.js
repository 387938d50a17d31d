// tandem console: opens the confirmation dialog of an action link. Without this script
// the link leads to a confirmation page that asks the same question.
(function () {
  "use strict";
  document.addEventListener("click", function (e) {
    var a = e.target.closest && e.target.closest("a[data-confirm-path]");
    var dlg = document.getElementById("confirm");
    if (!a || !dlg || typeof dlg.showModal !== "function") { return; }
    e.preventDefault();
    var form = document.getElementById("confirm-form");
    form.setAttribute("action", a.dataset.confirmPath);
    document.getElementById("confirm-title").textContent = a.dataset.confirmTitle;
    document.getElementById("confirm-text").textContent = a.dataset.confirmText;
    var ok = document.getElementById("confirm-ok");
    ok.textContent = a.dataset.confirmLabel || "Confirm";
    var fields = document.getElementById("confirm-fields");
    fields.replaceChildren();
    new URLSearchParams(a.dataset.confirmFields || "").forEach(function (v, k) {
      var i = document.createElement("input");
      i.type = "hidden"; i.name = k; i.value = v;
      fields.appendChild(i);
    });
    dlg.showModal();
    document.getElementById("confirm-cancel").focus();
  });
  document.addEventListener("click", function (e) {
    if (e.target && e.target.id === "confirm-cancel") {
      document.getElementById("confirm").close();
    }
  });
})();
