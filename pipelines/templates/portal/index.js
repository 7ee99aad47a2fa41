// Filter and sort the deployments table in the page: by words, kind, accountable organisation and status.
// Without JavaScript the table is complete (or paged, with one list per organisation) and in name order;
// the filter boxes stay hidden because they could do nothing.
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
  // A select filters on a row attribute (data-kind, data-status) or on a cell's text (the organisation).
  var selects = Array.prototype.slice.call(box.querySelectorAll("select"));
  box.hidden = false;

  function normalise(text) {
    return (text || "").toLowerCase().normalize("NFD").replace(/[\u0300-\u036f]/g, "");
  }
  function value(row, select) {
    var attribute = select.getAttribute("data-attribute");
    if (attribute) { return row.getAttribute("data-" + attribute); }
    return row.cells[parseInt(select.getAttribute("data-cell"), 10)].textContent.trim();
  }
  function filter() {
    var words = normalise(input.value).split(/\s+/).filter(Boolean);
    var chosen = selects.filter(function (s) { return s.value !== ""; });
    var count = 0;
    rows.forEach(function (row) {
      // The words match the row's text and its data-search (what the row does not show: id, vendor, place).
      var hay = normalise(row.textContent + " " + row.getAttribute("data-search"));
      var match = words.every(function (w) { return hay.indexOf(w) !== -1; }) &&
        chosen.every(function (s) { return value(row, s) === s.value; });
      row.hidden = !match;
      if (match) { count += 1; }
    });
    shown.textContent = template.replace("{shown}", count).replace("{total}", rows.length);
  }
  input.addEventListener("input", filter);
  selects.forEach(function (s) { s.addEventListener("change", filter); });
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
        // A cell may carry its own sort value (the verdict: worse is larger), else its text is the key.
        var own = cell.getAttribute("data-sort");
        if (own !== null) { return numeric ? parseFloat(own) : own; }
        var text = cell.textContent.trim();
        if (!numeric) { return normalise(text); }
        var number = parseFloat(text.replace(/[^0-9.\-]/g, ""));
        return isNaN(number) ? -1 : number;  // "–": the audit has not run
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
