/* trivsel: Great Expectations Data Docs without the internet (trivsel.datadocs_offline).
   GX loads bootstrap-table, vega and a date picker from CDNs; no installed package ships them. This file
   stands in for the parts the pages call: bootstrapTable renders the table's columns and data as a plain
   table (rows stay clickable links), vegaEmbed says the chart needs the network, and Bootstrap 4's
   data-toggle attributes are given their Bootstrap 5 names (the local Bootstrap is 5). */
(function ($) {
  "use strict";
  function attrsOf(fn, row, i) {
    var f = typeof fn === "string" ? window[fn] : fn;
    return typeof f === "function" ? (f(row, i) || {}) : {};
  }
  $.fn.bootstrapTable = function (opts) {
    if (!opts || typeof opts !== "object") { return this; }
    return this.each(function () {
      var cols = opts.columns || [], rows = opts.data || [];
      var $t = $(this).empty().addClass("table table-sm table-hover trivsel-offline-table");
      var $head = $("<tr/>");
      cols.forEach(function (c) { $head.append($("<th/>").html(c.title || c.field || "")); });
      $t.append($("<thead/>").append($head));
      var $body = $("<tbody/>");
      rows.forEach(function (row, i) {
        var $r = $("<tr/>"), a = attrsOf(opts.rowAttributes, row, i), s = attrsOf(opts.rowStyle, row, i);
        Object.keys(a).forEach(function (k) { if (a[k] !== undefined) { $r.attr(k, a[k]); } });
        if (s.css) { $r.css(s.css); }
        cols.forEach(function (c) {
          var v = row[c.field];
          $r.append($("<td/>").html(v === null || v === undefined ? "" : String(v)));
        });
        $body.append($r);
      });
      $t.append($body);
      $t.on("click", "tbody tr", function () { $t.trigger("click-row.bs.table", [{}, $(this)]); });
    });
  };
  $.fn.datepicker = function () { return this; };
  window.vegaEmbed = function (selector) {
    $(selector).addClass("trivsel-offline-chart").text("Diagrammet kræver internet (chart needs the network: vega is not installed locally).");
    return Promise.resolve();
  };
  $(function () {
    // Font Awesome is not local: the status icons as characters (passed / failed)
    $("i.fa-check-circle, i.fa-check").text("\u2714").attr("title", "passed").css({color: "#2e7d32", "font-style": "normal"});
    $("i.fa-times, i.fa-times-circle, i.fa-exclamation-triangle").text("\u2718").attr("title", "failed").css({color: "#c62828", "font-style": "normal"});
    $("[data-toggle]").each(function () {
      this.setAttribute("data-bs-toggle", this.getAttribute("data-toggle"));
      var target = this.getAttribute("data-target");
      if (target) { this.setAttribute("data-bs-target", target); }
    });
  });
})(jQuery);
