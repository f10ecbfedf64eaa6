// Keyboard shortcuts of the review queue (no inline scripts: the page's CSP allows only /static).
// J / K: next / previous document; 1-9: link the focused document to that candidate;
// C: type a code for it; "/": go to search.
(function () {
  "use strict";
  function items() { return Array.prototype.slice.call(document.querySelectorAll("article.review-item")); }
  function current() {
    var active = document.activeElement && document.activeElement.closest("article.review-item");
    return active || null;
  }
  function move(step) {
    var all = items(); if (!all.length) return;
    var index = all.indexOf(current());
    var next = all[Math.max(0, Math.min(all.length - 1, index < 0 ? 0 : index + step))];
    next.focus(); next.scrollIntoView({block: "nearest"});
  }
  document.addEventListener("keydown", function (event) {
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    var tag = (event.target.tagName || "").toLowerCase();
    if (tag === "input" || tag === "select" || tag === "textarea") return;
    var key = event.key.toLowerCase();
    if (key === "/") { event.preventDefault(); window.location.href = "/search"; return; }
    if (!items().length) return;
    if (key === "j") { event.preventDefault(); move(1); }
    else if (key === "k") { event.preventDefault(); move(-1); }
    else if (key === "c") {
      var item = current() || items()[0];
      var input = item && item.querySelector("input.code-input");
      if (input) { event.preventDefault(); input.focus(); }
    } else if (/^[1-9]$/.test(key)) {
      var focused = current(); if (!focused) return;
      var button = focused.querySelector('button.candidate-link[data-key="' + key + '"]');
      if (button) { event.preventDefault(); button.click(); }
    }
  });
  // After htmx swaps an item, keep the focus on it so J moves on from there.
  document.addEventListener("htmx:afterSwap", function (event) {
    var swapped = event.detail && event.detail.target;
    var item = swapped && document.getElementById(swapped.id);
    if (item && item.focus) item.focus();
  });
  document.addEventListener("DOMContentLoaded", function () {
    var first = items()[0]; if (first && !document.querySelector("[autofocus]")) first.focus();
  });
})();
