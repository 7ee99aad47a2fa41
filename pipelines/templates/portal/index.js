// Filter and sort the deployments table in the page. Without JavaScript the table is complete and in
// name order; the filter box stays hidden because it could do nothing.
(function () {
  "use strict";
  var table = document.getElementById("deployments");
  var box = document.getElementById("search");
  var input = document.getElementById("filter");
  var shown = document.getElementById("shown");
  if (!table || !box || !input) { return; }
  var body = table.tBodies[0];
  var rows = Array.prototype.slice.call(body.rows);
  var template = box.getAttribute("data-shown") || "{shown} / {total}";
  box.hidden = false;

  function normalise(text) {
    return (text || "").toLowerCase().normalize("NFD").replace(/[\u0300-\u036f]/g, "");
  }
  function filter() {
    var words = normalise(input.value).split(/\s+/).filter(Boolean);
    var count = 0;
    rows.forEach(function (row) {
      var hay = normalise(row.getAttribute("data-search"));
      var match = words.every(function (w) { return hay.indexOf(w) !== -1; });
      row.hidden = !match;
      if (match) { count += 1; }
    });
    shown.textContent = template.replace("{shown}", count).replace("{total}", rows.length);
  }
  input.addEventListener("input", filter);
  filter();

  var headers = Array.prototype.slice.call(table.tHead.rows[0].cells);
  headers.forEach(function (th, column) {
    var button = document.createElement("button");
    button.type = "button";
    while (th.firstChild) { button.appendChild(th.firstChild); }
    th.appendChild(button);
    button.addEventListener("click", function () {
      var ascending = th.getAttribute("aria-sort") !== "ascending";
      headers.forEach(function (other) { other.removeAttribute("aria-sort"); });
      th.setAttribute("aria-sort", ascending ? "ascending" : "descending");
      var numeric = th.getAttribute("data-type") === "number";
      function key(row) {
        var cell = row.cells[column];
        var value = cell.getAttribute("data-value");
        if (value === null) { value = cell.textContent.trim(); }
        return numeric ? parseFloat(value) : normalise(value);
      }
      rows.sort(function (a, b) {
        var x = key(a), y = key(b);
        var order = numeric ? x - y : x.localeCompare(y);
        return ascending ? order : -order;
      });
      rows.forEach(function (row) { body.appendChild(row); });
    });
  });
})();
