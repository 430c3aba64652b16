// The Keys page: a copy button for the new key's secret. Without this file the button stays
// hidden and the secret sits in a read-only field, ready to select and copy by hand. What it
// says comes from the page (data-copied, data-copy-failed), in the page's language.
"use strict";

(function () {
  const button = document.getElementById("copy-key");
  const status = document.getElementById("copy-status");
  if (!button || !navigator.clipboard) {
    return;
  }
  const field = document.getElementById(button.dataset.copyTarget);
  button.hidden = false;
  button.addEventListener("click", function () {
    navigator.clipboard.writeText(field.value).then(function () {
      status.textContent = button.dataset.copied || "Copied.";
    }, function () {
      field.select();
      status.textContent = button.dataset.copyFailed ||
        "Copy failed: the key is selected, press Ctrl+C.";
    });
  });
})();
