// Names for the admin's unlabelled controls: the fields of a list's editable columns and of
// tabular inlines take their column's heading; autocomplete boxes (and the search field of a
// many-valued one, such as tags) take their field's label.
"use strict";
(function () {
  function headingOf(cell) {
    const table = cell.closest("table");
    if (!table || !table.tHead) return "";
    const headings = table.tHead.rows[0] ? table.tHead.rows[0].cells : [];
    let index = 0;
    for (const sibling of cell.parentElement.cells) {
      if (sibling === cell) break;
      index += sibling.colSpan || 1;
    }
    let position = 0;
    for (const heading of headings) {
      if (position === index) return heading.textContent.trim();
      position += heading.colSpan || 1;
    }
    return "";
  }

  function name() {
    document.querySelectorAll("#result_list td input, #result_list td select, .tabular td input, .tabular td select, .tabular td textarea").forEach(function (field) {
      if (field.type === "hidden" || field.getAttribute("aria-label") || field.labels && field.labels.length) return;
      const label = headingOf(field.closest("td"));
      if (label) field.setAttribute("aria-label", label);
    });
    document.querySelectorAll("select.admin-autocomplete").forEach(function (select) {
      const label = select.id && document.querySelector('label[for="' + select.id + '"]');
      const container = select.nextElementSibling;
      if (!label || !container) return;
      container.querySelectorAll('[role="combobox"], [role="textbox"], [role="searchbox"], input.select2-search__field').forEach(function (box) {
        if (!box.getAttribute("aria-label")) box.setAttribute("aria-label", label.textContent.replace(/:\s*$/, "").trim());
      });
    });
  }

  // After the admin's own start-up (select2 boxes are made in jQuery's "ready", which may come late).
  if (window.django && window.django.jQuery) {
    window.django.jQuery(name);
  }
  window.addEventListener("load", function () { window.setTimeout(name, 0); });
  document.addEventListener("formset:added", name);
})();
