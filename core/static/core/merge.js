// The merge page (core/admin/merges.py): when another record is chosen to stay, each field the user
// has not picked follows it, preselected as the server would (the survivor's value where it has one,
// else the first other's: each survivor radio carries that choice in data-defaults). ``defaults_of``
// tells the server which survivor the values on screen were preselected for.
"use strict";
(function () {
  function start() {
    const form = document.getElementById("merge-form");
    if (!form) return;
    const picked = new Set();
    const radio = function (name, value) {
      return form.querySelector('input[name="' + CSS.escape(name) + '"][value="' + CSS.escape(String(value)) + '"]');
    };
    // Values the user chose before this page was shown (a preview) stay theirs.
    const current = form.querySelector("input[name=survivor]:checked");
    const shown = JSON.parse((current && current.dataset.defaults) || "{}");
    Object.keys(shown).forEach(function (name) {
      const checked = form.querySelector('input[name="' + CSS.escape("field:" + name) + '"]:checked');
      if (checked && checked.value !== String(shown[name])) picked.add("field:" + name);
    });
    form.addEventListener("change", function (event) {
      const input = event.target;
      if (input.name.startsWith("field:")) {
        picked.add(input.name);
        return;
      }
      if (input.name !== "survivor") return;
      const defaults = JSON.parse(input.dataset.defaults || "{}");
      Object.keys(defaults).forEach(function (name) {
        const target = radio("field:" + name, defaults[name]);
        if (target && !picked.has("field:" + name)) target.checked = true;
      });
      form.elements.defaults_of.value = input.value;
    });
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
