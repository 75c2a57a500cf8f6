// The console's only script (no build step, no third-party code): "select all" boxes and confirmations.
"use strict";
document.addEventListener("DOMContentLoaded", () => {
  for (const box of document.querySelectorAll("input.select-all")) {
    box.addEventListener("change", () => {
      for (const item of box.closest("form").querySelectorAll('input[type=checkbox][name=id]')) {
        item.checked = box.checked;
      }
    });
  }
  for (const button of document.querySelectorAll("button[data-confirm]")) {
    button.addEventListener("click", (event) => {
      if (!window.confirm(button.dataset.confirm)) event.preventDefault();
    });
  }
  for (const form of document.querySelectorAll("form#letters")) {
    form.addEventListener("submit", (event) => {
      if (!form.querySelector('input[type=checkbox][name=id]:checked')) {
        event.preventDefault();
        window.alert("Choose at least one dead letter.");
      }
    });
  }
});
