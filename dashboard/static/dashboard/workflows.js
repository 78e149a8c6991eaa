// Progressive enhancement for the pages that act; every form also works without it.
(function () {
  "use strict";

  // A form with data-confirm asks before it is sent (cancelling a session).
  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (form instanceof HTMLFormElement && form.dataset.confirm && !window.confirm(form.dataset.confirm)) {
      event.preventDefault();
    }
  }, true);

  // Route and dose belong to ketamine sessions only: hide and disable them for other kinds, so
  // they are neither seen nor sent. Without this script they show, and the server explains.
  function syncKetamineFields(kind) {
    var form = kind.form;
    var group = form && form.querySelector("[data-ketamine-only]");
    if (!group) { return; }
    var isKetamine = kind.value === "ketamine";
    group.hidden = !isKetamine;
    group.disabled = !isKetamine;
  }

  document.addEventListener("DOMContentLoaded", function () {
    var kind = document.querySelector("select[name='kind']");
    if (kind) {
      syncKetamineFields(kind);
      kind.addEventListener("change", function () { syncKetamineFields(kind); });
    }
  });
})();
