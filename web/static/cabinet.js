// The prediction form: show only the chosen model's input hints. Without this file every
// model's hints stay on the page (the chosen one open), so the form works without JavaScript.
"use strict";

(function () {
  const select = document.getElementById("model_id");
  const hints = document.querySelectorAll(".model-hint[data-model-id]");
  const data = document.getElementById("data");
  if (!select || hints.length === 0) {
    return;
  }
  function showChosen() {
    hints.forEach(function (hint) {
      const chosen = hint.dataset.modelId === select.value;
      hint.hidden = !chosen;
      hint.open = chosen;
      if (chosen && data && hint.dataset.example) {
        data.placeholder = hint.dataset.example;
      }
    });
  }
  document.documentElement.classList.add("js-model-hints");
  select.addEventListener("change", showChosen);
  showChosen();
})();
