// Keyboard shortcuts for the item page. Loaded from /static (the CSP forbids inline
// script). Keys are ignored while typing in a field, so a template edit can use "a".
"use strict";
document.addEventListener("keydown", (event) => {
  const target = event.target;
  if (event.ctrlKey || event.metaKey || event.altKey) return;
  if (target instanceof HTMLElement && target.closest("input, textarea, select")) return;
  const byKey = {
    a: () => document.getElementById("form-accept")?.requestSubmit(),
    s: () => document.getElementById("form-skip")?.requestSubmit(),
    r: () => document.getElementById("reason")?.focus(),
    e: () => document.getElementById("edit-template")?.focus(),
    l: () => document.getElementById("superdomain")?.focus(),
  };
  const action = byKey[event.key];
  if (action) {
    event.preventDefault();
    action();
  }
});
// Tells tests (and anything else) that the shortcuts are live.
document.documentElement.dataset.shortcuts = "ready";
