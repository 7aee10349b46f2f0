// Findings table filters: plain DOM, no framework, nothing fetched.
// Values come from the page's own data-* attributes and <option> values;
// nothing here ever writes HTML (only the `hidden` flag and a count).
(function () {
  "use strict";
  var table = document.getElementById("findings-table");
  if (!table) { return; }
  var rows = Array.prototype.slice.call(table.tBodies[0].rows);
  var filters = Array.prototype.slice.call(document.querySelectorAll("[data-filter]"));
  var search = document.getElementById("filter-search");
  var shown = document.getElementById("findings-shown");

  function matches(row) {
    for (var i = 0; i < filters.length; i++) {
      var want = filters[i].value;
      var key = filters[i].getAttribute("data-filter");
      if (!want) { continue; }
      var have = row.getAttribute("data-" + key) || "";
      if (key === "control") {
        if (have.split(" ").indexOf(want) < 0) { return false; }
      } else if (have !== want) {
        return false;
      }
    }
    var text = search.value.trim().toLowerCase();
    return !text || row.textContent.toLowerCase().indexOf(text) >= 0;
  }

  function apply() {
    var count = 0;
    rows.forEach(function (row) {
      var visible = matches(row);
      row.hidden = !visible;
      if (visible) { count += 1; }
    });
    shown.textContent = count + " of " + rows.length + " findings shown";
  }

  filters.forEach(function (f) { f.addEventListener("change", apply); });
  search.addEventListener("input", apply);
  document.getElementById("filter-reset").addEventListener("click", function () {
    filters.forEach(function (f) { f.value = ""; });
    search.value = "";
    apply();
  });
  apply();
}());
